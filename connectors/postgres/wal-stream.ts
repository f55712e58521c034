import { Client } from 'pg';
import { LogicalReplicationService, Pgoutput, PgoutputPlugin } from 'pg-logical-replication';
import { Logger } from '../../core/runtime/logger';
import { SourceBatch, SourceProgress } from '../source';
import { serializeCheckpoint } from './checkpoint';
import { formatLsn, Lsn, parseLsn, ZERO_LSN } from './lsn';
import { SESSION_OPTIONS } from './pg-session';
import { Inbox } from './inbox';
import { ResyncCoordinator } from './resync';
import { TransactionAssembler } from './transaction-assembler';
import { TypeCatalog } from './type-catalog';

/**
 * pgoutput plugin that keeps every column value as the raw text Postgres sent:
 * the library's default parsers turn timestamps into JS Dates (losing
 * microseconds) and bigints into Numbers.
 */
class RawTextPgoutputPlugin extends PgoutputPlugin {
  override parse(buffer: Buffer): Pgoutput.Message {
    const message = super.parse(buffer) as Pgoutput.Message;
    if (message.tag === 'relation') for (const column of message.columns) column.parser = (raw: unknown) => raw;
    return message;
  }
}

export const HEARTBEAT_PREFIX = 'tidewater_heartbeat';
const FEEDBACK_INTERVAL_MS = 1000;

export interface WalStreamOptions {
  url: string;
  sourceName: string;
  slot: string;
  publication: string;
  db: string;
  primaryKeys: Map<string, string[]>;
  catalog: TypeCatalog;
  /** A plain connection for heartbeats and backlog queries. */
  admin: Client;
  heartbeatIntervalMs: number;
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
 * Traps of pg-logical-replication avoided here (DESIGN §7): automatic
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

  constructor(private readonly options: WalStreamOptions) {
    this.lastAcknowledged = options.startLsn;
    this.lastCheckpoint = options.startLsn;
  }

  async run(): Promise<void> {
    const { options } = this;
    const assembler = new TransactionAssembler(
      {
        sourceName: options.sourceName,
        db: options.db,
        primaryKeys: options.primaryKeys,
        maxBatchEvents: 1000,
        decode: (oid, text) => options.catalog.decode(oid, text),
        onRowEvent: (event) => options.resync.onRowEvent(event),
        onLogicalMessage: (message, commitLsn) => options.resync.onLogicalMessage(message, commitLsn),
      },
      options.startLsn,
    );
    const service = new LogicalReplicationService(
      { connectionString: options.url, options: SESSION_OPTIONS } as never,
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: false } },
    );
    this.service = service;
    let failStream: (error: Error) => void = () => undefined;
    // The library's own flow control pauses the socket around every message, which
    // stalls the server's decoding; ours pauses only when far behind.
    const socket = () => (service as unknown as { _connection?: { stream?: { pause(): void; resume(): void } } })._connection?.stream;
    const inbox = new Inbox<[string, Pgoutput.Message]>(
      async ([lsn, message]) => {
        if (message.tag === 'relation') await options.catalog.load(message.columns.map((c) => c.typeOid));
        const batch = assembler.onMessage(lsn, message);
        if (!batch) return;
        if (message.tag === 'commit') options.resync.commitStaged();
        // The queued resync tasks ride along in every checkpoint, so they survive restarts.
        this.lastCheckpoint = parseLsn(batch.checkpoint);
        await options.emit({ ...batch, checkpoint: this.checkpoint() });
      },
      { pause: () => socket()?.pause(), resume: () => socket()?.resume(), onError: (error) => failStream(error) },
    );
    service.on('data', (lsn: string, message: Pgoutput.Message) => inbox.push([lsn, message]));
    service.on('heartbeat', async (_lsn: string, _timestamp: number, shouldRespond: boolean) => {
      if (shouldRespond) await this.sendFeedback();
    });
    const heartbeat = options.heartbeatIntervalMs > 0 ? setInterval(() => void this.beat(), options.heartbeatIntervalMs) : null;
    try {
      await new Promise<void>((resolve, reject) => {
        const { signal } = options;
        const stop = () => void service.stop().then(() => resolve(), reject);
        signal.addEventListener('abort', stop, { once: true });
        failStream = (error: Error) => {
          signal.removeEventListener('abort', stop);
          void service.stop().finally(() => reject(error));
        };
        service.on('error', failStream);
        service.on('start', () => {
          options.logger.info('streaming', { slot: options.slot, from: formatLsn(options.startLsn) });
          options.onStreaming();
          void this.beat();
        });
        const plugin = new RawTextPgoutputPlugin({ protoVersion: 1, publicationNames: [options.publication], messages: true });
        service.subscribe(plugin, options.slot, formatLsn(options.startLsn)).then(
          () => (signal.aborted ? resolve() : reject(new Error(`the replication stream from slot ${options.slot} ended unexpectedly`))),
          (error: Error) => (signal.aborted ? resolve() : reject(error)),
        );
      });
    } finally {
      if (heartbeat) clearInterval(heartbeat);
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
    await this.service?.destroy();
    this.service = null;
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
    try {
      if (heartbeatIntervalMs > 0) await admin.query(`SELECT pg_logical_emit_message(true, '${HEARTBEAT_PREFIX}', '')`);
      const { rows } = await admin.query<{ backlog: string | null }>(
        `SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint::text AS backlog FROM pg_replication_slots WHERE slot_name = $1`,
        [slot],
      );
      if (rows[0]?.backlog != null) report.backlogBytes(Number(rows[0].backlog));
    } catch (error) {
      logger.warn('heartbeat failed', { slot, error: (error as Error).message });
    }
  }
}
