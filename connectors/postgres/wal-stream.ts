import { Client } from 'pg';
import { LogicalReplicationService, Pgoutput, PgoutputPlugin } from 'pg-logical-replication';
import { Logger } from '../../core/runtime/logger';
import { SourceBatch, SourceProgress } from '../source';
import { serializeCheckpoint } from './checkpoint';
import { formatLsn, Lsn, parseLsn, ZERO_LSN } from './lsn';
import { SESSION_OPTIONS } from './pg-session';
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
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } },
    );
    this.service = service;
    service.on('data', async (lsn: string, message: Pgoutput.Message) => {
      if (message.tag === 'relation') await options.catalog.load(message.columns.map((c) => c.typeOid));
      const batch = assembler.onMessage(lsn, message);
      if (!batch) return;
      // The queued resync tasks ride along in every checkpoint, so they survive restarts.
      this.lastCheckpoint = parseLsn(batch.checkpoint);
      await options.emit({ ...batch, checkpoint: this.checkpoint() });
    });
    service.on('heartbeat', async (_lsn: string, _timestamp: number, shouldRespond: boolean) => {
      if (shouldRespond) await this.sendFeedback();
    });
    const heartbeat = options.heartbeatIntervalMs > 0 ? setInterval(() => void this.beat(), options.heartbeatIntervalMs) : null;
    try {
      await new Promise<void>((resolve, reject) => {
        const { signal } = options;
        const stop = () => void service.stop().then(() => resolve(), reject);
        signal.addEventListener('abort', stop, { once: true });
        service.on('error', (error: Error) => {
          signal.removeEventListener('abort', stop);
          void service.stop().finally(() => reject(error));
        });
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
    return serializeCheckpoint({ lsn: this.lastCheckpoint, resync: this.options.resync.tasks() });
  }

  async acknowledge(lsn: Lsn): Promise<void> {
    if (lsn <= this.lastAcknowledged) return;
    this.lastAcknowledged = lsn;
    await this.sendFeedback();
  }

  async close(): Promise<void> {
    await this.service?.destroy();
    this.service = null;
  }

  /** Reports the last durable LSN as written and flushed: the slot may advance to it. */
  private async sendFeedback(): Promise<void> {
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
