import { Client } from 'pg';
import { LogicalReplicationService, Pgoutput, PgoutputPlugin } from 'pg-logical-replication';
import { AttemptFailure } from '../../core/runtime/component-health';
import { Logger } from '../../core/runtime/logger';
import { SourceBatch, SourceProgress } from '../../core/contracts/source';
import { serializeCheckpoint } from './checkpoint';
import { formatLsn, Lsn, parseLsn, ZERO_LSN } from './lsn';
import { SESSION_OPTIONS } from './pg-session';
import { parseRowMessage } from './pgoutput-rows';
import { Inbox } from './inbox';
import { TRANSACTION_PART_BYTES, TRANSACTION_PART_EVENTS } from '../shared/transaction-parts';
import { ResyncCoordinator } from './resync';
import { TransactionAssembler } from './transaction-assembler';
import { TypeCatalog } from './type-catalog';

/**
 * pgoutput plugin that keeps every column value as the raw text Postgres sent:
 * the library's default parsers turn timestamps into JS Dates (losing
 * microseconds) and bigints into Numbers.
 */
class RawTextPgoutputPlugin extends PgoutputPlugin {
  /** Bytes of the message parse() read last: the library emits each message right after parsing it, so the 'data' listener reads its size here. */
  lastMessageBytes = 0;

  override parse(buffer: Buffer): Pgoutput.Message {
    this.lastMessageBytes = buffer.length;
    // Row messages are parsed here (pgoutput-rows.ts) with the relations the library's parser keeps (pg-logical-replication 2.5's
    // `parser._relationCache`; if a later version moves it, everything goes through the library as before).
    const relations = (this as unknown as { parser?: { _relationCache?: unknown } }).parser?._relationCache;
    const row = relations instanceof Map ? parseRowMessage(buffer, relations) : null;
    if (row) return row;
    const message = super.parse(buffer) as Pgoutput.Message;
    if (message.tag === 'relation') for (const column of message.columns) column.parser = (raw: unknown) => raw;
    // The library hands a logical message's content as a view into the protocol parser's buffer: after a
    // 50 MB row that buffer is 64 MB, and a heartbeat queued behind the row kept all of it (a heap snapshot
    // of the big-values fault case). A copy of the few bytes lets it go.
    if (message.tag === 'message') message.content = Buffer.from(message.content);
    return message;
  }
}

export const HEARTBEAT_PREFIX = 'tidewater_heartbeat';
const FEEDBACK_INTERVAL_MS = 1000;

/**
 * Postgres ends a replication connection that sent no status update for
 * wal_sender_timeout (60 s by default). Updates go out after durable commits
 * and in reply to keepalives — but inside one long transaction nothing
 * becomes durable, and while the socket is paused (backpressure) keepalives go
 * unread: the walsender cut the connection and the transaction started over,
 * for good when it always took longer than the timeout (a 2M-row transaction
 * under load; 200k rows against a 1 s timeout in a test). So a status update also goes
 * out on a timer: every quarter of the server's timeout, at most every 10 s
 * (a Postgres standby's own wal_receiver_status_interval).
 */
const STATUS_INTERVAL_MAX_MS = 10_000;

export interface WalStreamOptions {
  url: string;
  sourceName: string;
  /** Build the events' SOURCE_DETAILS (SourceStreamOptions.sourceDetails); default true. */
  sourceDetails?: boolean;
  slot: string;
  publication: string;
  db: string;
  primaryKeys: Map<string, string[]>;
  catalog: TypeCatalog;
  /** A plain connection for heartbeats and backlog queries. */
  admin: Client;
  heartbeatIntervalMs: number;
  /** The replication connection is dead when nothing (data or keepalive) arrives for this long; 0 turns the watchdog off. */
  livenessTimeoutMs: number;
  /** `host:port`, for messages. */
  server: string;
  startLsn: Lsn;
  /** Watermark windows of a running resync, fed by the stream. */
  resync: ResyncCoordinator;
  emit(batch: SourceBatch): Promise<void>;
  onStreaming(): void;
  report: SourceProgress;
  signal: AbortSignal;
  logger: Logger;
}

/**
 * Streams committed transactions from the slot.
 *
 * Traps of pg-logical-replication avoided here (docs/architecture.md §7): automatic
 * acknowledgement is off (it would confirm LSNs before they are durable), the
 * periodic status timer is off (it confirms the last *received* LSN), and
 * keepalives are answered with the last *durable* LSN. A new instance (and
 * connection) is used for each attempt, started from the saved LSN.
 */
export class WalStream {
  private service: LogicalReplicationService | null = null;
  private lastAcknowledged: Lsn;
  private lastCheckpoint: Lsn;
  private lastFeedbackAt = 0;
  private feedbackTimer: NodeJS.Timeout | null = null;
  /** Last time anything arrived on the replication connection (or it was paused by us). */
  private lastArrivalMs = Date.now();
  private socketPaused = false;
  /** When the heartbeat query in flight started (0: none). */
  private beatStartedMs = 0;

  constructor(private readonly options: WalStreamOptions) {
    this.lastAcknowledged = options.startLsn;
    this.lastCheckpoint = options.startLsn;
  }

  async run(): Promise<void> {
    const { options } = this;
    const assembler = new TransactionAssembler(
      {
        sourceName: options.sourceName,
        sourceDetails: options.sourceDetails,
        db: options.db,
        primaryKeys: options.primaryKeys,
        maxBatchEvents: TRANSACTION_PART_EVENTS,
        maxBatchBytes: TRANSACTION_PART_BYTES,
        decode: (oid, text) => options.catalog.decode(oid, text),
        onRowEvent: (event) => options.resync.onRowEvent(event),
        onLogicalMessage: (message, commitLsn) => options.resync.onLogicalMessage(message, commitLsn),
      },
      options.startLsn,
    );
    const service = new LogicalReplicationService(
      { connectionString: options.url, options: SESSION_OPTIONS, connectionTimeoutMillis: 10_000, keepAlive: true } as never,
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: false } },
    );
    this.service = service;
    listenBeforeConnecting(service);
    let failStream: (error: Error) => void = () => undefined;
    // The library's own flow control pauses the socket around every message, which
    // stalls the server's decoding; ours pauses only when far behind.
    const socket = () => (service as unknown as { _connection?: { stream?: { pause(): void; resume(): void } } })._connection?.stream;
    // Not an async function: most messages (a row change joining its transaction) need no promise and no turn of the queue.
    const handle = (lsn: string, message: Pgoutput.Message, bytes: number): Promise<void> | undefined => {
      const batch = assembler.onMessage(lsn, message, bytes);
      if (!batch) return undefined;
      if (message.tag === 'commit') options.resync.commitStaged();
      // The queued resync tasks ride along in every checkpoint, so they survive restarts.
      this.lastCheckpoint = parseLsn(batch.checkpoint);
      return options.emit({ ...batch, checkpoint: this.checkpoint() });
    };
    const inbox = new Inbox<[string, Pgoutput.Message, number]>(
      ([lsn, message, bytes]) =>
        message.tag === 'relation' ? options.catalog.load(message.columns.map((c) => c.typeOid)).then(() => handle(lsn, message, bytes)) : handle(lsn, message, bytes),
      {
        pause: () => {
          this.socketPaused = true;
          socket()?.pause();
        },
        resume: () => {
          this.socketPaused = false;
          this.lastArrivalMs = Date.now();
          socket()?.resume();
        },
        onError: (error) => failStream(error),
      },
    );
    const plugin = new RawTextPgoutputPlugin({ protoVersion: 1, publicationNames: [options.publication], messages: true });
    service.on('data', (lsn: string, message: Pgoutput.Message) => {
      this.lastArrivalMs = Date.now();
      const bytes = plugin.lastMessageBytes;
      inbox.push([lsn, message, bytes], bytes);
    });
    service.on('heartbeat', async (_lsn: string, _timestamp: number, shouldRespond: boolean) => {
      this.lastArrivalMs = Date.now();
      if (shouldRespond) await this.sendFeedback().catch(() => undefined); // a dead connection is reported by the stream itself
    });
    const heartbeat = options.heartbeatIntervalMs > 0 ? setInterval(() => void this.beat(), options.heartbeatIntervalMs) : null;
    const statusEveryMs = await this.statusInterval();
    const status = setInterval(() => {
      if (Date.now() - this.lastFeedbackAt >= statusEveryMs) void this.sendFeedback().catch(() => undefined); // a dead connection is reported by the stream itself
    }, Math.max(50, Math.floor(statusEveryMs / 2)));
    const liveness = options.livenessTimeoutMs > 0 ? Math.max(50, Math.floor(options.livenessTimeoutMs / 4)) : 0;
    const watchdog = liveness > 0 ? setInterval(() => this.watch(failStream), liveness) : null;
    try {
      await new Promise<void>((resolve, reject) => {
        const { signal } = options;
        let settled = false;
        const end = () => forceStop(service);
        const stop = () => {
          if (settled) return;
          settled = true;
          void end().then(() => resolve());
        };
        if (signal.aborted) return stop();
        signal.addEventListener('abort', stop, { once: true });
        failStream = (error: Error) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener('abort', stop);
          void end().then(() => reject(error));
        };
        service.on('error', (error: Error) =>
          failStream(new AttemptFailure(`replication connection to ${options.server} (slot ${options.slot}) lost: ${error.message}`, 'connection_lost', { cause: error })),
        );
        service.on('start', () => {
          options.logger.info('streaming', { slot: options.slot, from: formatLsn(options.startLsn) });
          options.onStreaming();
          void this.beat();
        });
        this.lastArrivalMs = Date.now();
        service.subscribe(plugin, options.slot, formatLsn(options.startLsn)).then(
          () => (signal.aborted ? stop() : failStream(new AttemptFailure(`the replication stream from ${options.server} (slot ${options.slot}) ended unexpectedly`, 'connection_lost'))),
          (error: Error) => (signal.aborted ? stop() : failStream(error)),
        );
      });
    } finally {
      if (heartbeat) clearInterval(heartbeat);
      clearInterval(status);
      if (watchdog) clearInterval(watchdog);
      if (this.feedbackTimer) clearTimeout(this.feedbackTimer);
      this.feedbackTimer = null;
    }
  }

  /**
   * The liveness watchdog: a blackholed network sends no FIN, so a silent
   * connection is taken for dead. Silence is broken on purpose first: a status
   * update asking for a reply makes the walsender answer at once.
   */
  private watch(fail: (error: Error) => void): void {
    const { livenessTimeoutMs, server, slot } = this.options;
    const now = Date.now();
    if (this.socketPaused) return; // we stopped reading (backpressure): silence is ours
    const silentMs = now - this.lastArrivalMs;
    if (silentMs > livenessTimeoutMs) {
      fail(new AttemptFailure(`replication connection to ${server} (slot ${slot}) received nothing (no data, no keepalive) for ${Math.round(silentMs / 1000)} s (livenessTimeoutMs ${livenessTimeoutMs}): treating it as dead and reconnecting`, 'liveness_timeout'));
      return;
    }
    if (this.beatStartedMs && now - this.beatStartedMs > livenessTimeoutMs) {
      fail(new AttemptFailure(`control connection to ${server} did not answer a heartbeat query within ${livenessTimeoutMs} ms (livenessTimeoutMs): treating it as dead and reconnecting`, 'liveness_timeout'));
      return;
    }
    if (silentMs > livenessTimeoutMs / 4) this.ping();
  }

  /** A standby status update with the durable LSN that asks the server to reply now. */
  private ping(): void {
    if (!this.service || this.lastAcknowledged === ZERO_LSN) return;
    void this.service.acknowledge(formatLsn(this.lastAcknowledged - 1n), true).catch(() => undefined);
  }

  /** How often a status update must go out so the walsender never times us out (see STATUS_INTERVAL_MAX_MS). */
  private async statusInterval(): Promise<number> {
    try {
      const { rows } = await this.options.admin.query(`SELECT setting::bigint AS ms FROM pg_settings WHERE name = 'wal_sender_timeout'`);
      const timeoutMs = Number(rows[0]?.ms ?? 0);
      return timeoutMs > 0 ? Math.min(STATUS_INTERVAL_MAX_MS, Math.floor(timeoutMs / 4)) : STATUS_INTERVAL_MAX_MS;
    } catch {
      return STATUS_INTERVAL_MAX_MS; // the control connection's own failure is reported by the heartbeat
    }
  }

  /** The current checkpoint: last complete transaction plus queued resync tasks. */
  checkpoint(): string {
    return serializeCheckpoint({ position: this.lastCheckpoint, resync: this.options.resync.tasks() });
  }

  /**
   * Records a durable LSN. The server hears of it at most once per
   * FEEDBACK_INTERVAL_MS: each confirmation can make the walsender save the slot
   * to disk, and confirming every small transaction stalls its decoding.
   * Confirming later is always safe; it only keeps WAL a moment longer.
   */
  async acknowledge(lsn: Lsn): Promise<void> {
    if (lsn <= this.lastAcknowledged) return;
    this.lastAcknowledged = lsn;
    if (this.feedbackTimer) return;
    const wait = Math.max(0, this.lastFeedbackAt + FEEDBACK_INTERVAL_MS - Date.now());
    this.feedbackTimer = setTimeout(() => {
      this.feedbackTimer = null;
      void this.sendFeedback().catch(() => undefined); // a dead connection is reported by the stream itself
    }, wait);
  }

  async close(): Promise<void> {
    if (this.feedbackTimer) clearTimeout(this.feedbackTimer);
    this.feedbackTimer = null;
    const service = this.service;
    this.service = null;
    if (service) await forceStop(service); // its 'error' listener stays: a late error of its client must not crash the process
  }

  /** Reports the last durable LSN as written and flushed: the slot may advance to it. */
  private async sendFeedback(): Promise<void> {
    this.lastFeedbackAt = Date.now();
    if (!this.service || this.lastAcknowledged === ZERO_LSN) return;
    // The library reports lsn + 1; we want the commit end LSN itself, so that a
    // transaction whose commit record starts exactly there is not skipped.
    await this.service.acknowledge(formatLsn(this.lastAcknowledged - 1n));
  }

  /**
   * A transactional logical message: it flows through the slot like a tiny
   * transaction, so the slot advances and lag reads true even when no
   * captured table changes. Also samples the WAL backlog of the slot.
   */
  private async beat(): Promise<void> {
    const { admin, slot, report, logger, heartbeatIntervalMs } = this.options;
    if (this.beatStartedMs) return; // the last one has not come back: the watchdog judges it
    this.beatStartedMs = Date.now();
    try {
      if (heartbeatIntervalMs > 0) await admin.query(`SELECT pg_logical_emit_message(true, '${HEARTBEAT_PREFIX}', '')`);
      const { rows } = await admin.query<{ backlog: string | null }>(
        `SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint::text AS backlog FROM pg_replication_slots WHERE slot_name = $1`,
        [slot],
      );
      if (rows[0]?.backlog != null) report.backlogBytes(Number(rows[0].backlog));
    } catch (error) {
      logger.warn('heartbeat failed', { slot, error: (error as Error).message });
    } finally {
      this.beatStartedMs = 0;
    }
  }
}

/**
 * The library attaches its client's 'error' listener only after connect()
 * resolves; an error that arrives in the same read as the handshake's end
 * (a 57P01 from a server shutting down) would find no listener and crash the
 * process. Same method, with the listener first.
 */
function listenBeforeConnecting(service: LogicalReplicationService): void {
  type Internals = { clientConfig: object; _client: Client | null; _connection: unknown; stop(): Promise<unknown>; emit(event: string, ...args: unknown[]): boolean };
  const internals = service as unknown as Internals & { client(): Promise<[Client, unknown]> };
  internals.client = async function (this: Internals): Promise<[Client, unknown]> {
    await this.stop();
    const client = new Client({ ...this.clientConfig, replication: 'database' } as never);
    this._client = client;
    client.on('error', (error: Error) => this.emit('error', error));
    await client.connect();
    this._connection = (client as unknown as { connection: unknown }).connection;
    return [client, this._connection];
  };
}

/** Ends the replication connection for sure: a blackholed socket never answers a polite goodbye. */
async function forceStop(service: LogicalReplicationService): Promise<void> {
  const client = (service as unknown as { _client?: { connection?: { stream?: { destroy(): void } } } })._client;
  client?.connection?.stream?.destroy();
  await withTimeout(service.stop(), 2000).catch(() => undefined);
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
