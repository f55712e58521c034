import { Connection, RowDataPacket } from 'mysql2/promise';
import { AttemptFailure } from '../../core/runtime/component-health';
import { Logger } from '../../core/runtime/logger';
import { SourceBatch, SourceProgress } from '../../core/contracts/source';
import { BinlogDecoder, DecodedEvent, MysqlConnectionOptions } from './binlog-decoder';
import { BinlogPosition, fileSequence, formatBinlogPosition } from './binlog-position';
import { MysqlCatalog } from './catalog';
import { parseCheckpoint, ResyncTask, serializeCheckpoint } from './checkpoint';
import { DdlEffect } from './ddl';
import { ResyncCoordinator } from './resync';
import { MysqlTransactionAssembler } from './transaction-assembler';
import { STREAM_QUEUE_BYTES } from '../shared/transaction-parts';

export interface BinlogStreamOptions {
  sourceName: string;
  /** Build the events' SOURCE_DETAILS (SourceStreamOptions.sourceDetails); default true. */
  sourceDetails?: boolean;
  decoder: BinlogDecoder;
  connection: MysqlConnectionOptions;
  serverId: number;
  /** Configured table patterns (`db.table`, `db.*`). */
  tables: string[];
  catalog: MysqlCatalog;
  /** A control connection for catalog refreshes and backlog queries. */
  admin: Connection;
  from: BinlogPosition;
  heartbeatIntervalMs: number;
  /** The binlog connection is dead when nothing (events or heartbeats) arrives for this long; 0 turns the watchdog off. */
  livenessTimeoutMs: number;
  maxBatchEvents: number;
  /** See MysqlAssemblerOptions.maxBatchBytes. */
  maxBatchBytes?: number;
  /** `db.table` of the resync watermarks: read from the binlog, never emitted. */
  watermarkTable?: string;
  /** Watermark windows of a running resync, fed by the stream; its tasks ride in every checkpoint. */
  resync?: ResyncCoordinator;
  emit(batch: SourceBatch): Promise<void>;
  onStreaming(): void;
  report: SourceProgress;
  signal: AbortSignal;
  logger: Logger;
}

/**
 * Decoded events buffered between the socket and the assembler; above this
 * many, or STREAM_QUEUE_BYTES of rows events, the socket is paused. A rows
 * event holds at most binlog_row_event_max_size bytes (8 KiB by default) unless
 * one row is bigger: a row of 50 MB is an event of 50 MB, hence the byte bound.
 */
const HIGH_WATER = 256;
const LOW_WATER = 64;
const eventBytes = (event: DecodedEvent) => (event.kind === 'rows' ? event.bytes ?? 0 : 0);

/** Batches that only move the checkpoint (filtered transactions) go out at most this often. */
const EMPTY_BATCH_INTERVAL_MS = 1000;

/**
 * Streams the binlog from a transaction boundary: decoder → bounded queue →
 * transaction assembler → emit (awaited, so a slow log pauses the socket).
 * Fails (for the runtime to reconnect with backoff) when the decoder fails or
 * when neither events nor heartbeats arrive for livenessTimeoutMs (the server
 * is asked for heartbeats at least three times as often).
 */
export class BinlogStream {
  private readonly queue: DecodedEvent[] = [];
  /** Bytes of the queued rows events (those whose size the decoder tells). */
  private queuedBytes = 0;
  private wake: (() => void) | null = null;
  private failure: Error | null = null;
  private paused = false;
  private busy = false;
  private lastArrival = Date.now();
  /** The decoder's start has resolved (the server accepted the dump request). */
  private started = false;
  /** Resolves when the stream ends: the first failure, or the signal's abort. */
  private readonly ended: Promise<void>;
  private markEnded!: () => void;
  private sampling = false;
  private lastEmitMs = 0;
  private acknowledged: BinlogPosition;
  private readonly pendingDdl: DdlEffect[] = [];
  /** Position and commit time of the last batch handed to the runtime. */
  private lastEmitted: { position: BinlogPosition; commitTimeMs: number };

  constructor(private readonly options: BinlogStreamOptions) {
    this.acknowledged = options.from;
    this.lastEmitted = { position: options.from, commitTimeMs: Date.now() };
    this.ended = new Promise<void>((resolve) => (this.markEnded = resolve));
  }

  async run(): Promise<void> {
    const { options } = this;
    const assembler = new MysqlTransactionAssembler(
      {
        sourceName: options.sourceName,
        sourceDetails: options.sourceDetails,
        isCaptured: (t) => options.catalog.isCaptured(t),
        jsonColumns: (t) => options.catalog.jsonColumns(t),
        primaryKey: (t) => options.catalog.primaryKey(t),
        maxBatchEvents: options.maxBatchEvents,
        maxBatchBytes: options.maxBatchBytes,
        onDdl: (effects, sql) => {
          options.logger.info('DDL on captured tables', { sql: sql.slice(0, 200) });
          for (const e of effects) if (e.op === 'rename' && options.catalog.isCaptured(e.to) && !options.catalog.isCaptured(e.table)) {
            options.logger.warn(`table ${e.table} was renamed to the captured ${e.to}: its existing rows were not streamed; re-snapshot it (cdc resync --table ${e.to})`);
          }
          this.pendingDdl.push(...effects);
        },
        watermarkTable: options.watermarkTable,
        onRowEvent: options.resync && ((event) => options.resync!.onRowEvent(event)),
        onWatermark: options.resync && ((row, tx) => options.resync!.onWatermark(row, tx)),
      },
      options.from,
    );
    const onAbort = () => {
      this.markEnded();
      this.notify();
    };
    options.signal.addEventListener('abort', onAbort, { once: true });
    const heartbeatMs = serverHeartbeatMs(options.heartbeatIntervalMs, options.livenessTimeoutMs);
    const period = Math.min(heartbeatMs > 0 ? heartbeatMs : 5000, options.livenessTimeoutMs > 0 ? Math.max(50, options.livenessTimeoutMs / 4) : Infinity);
    const timer = setInterval(() => void this.tick(), period);
    if (options.signal.aborted) onAbort();
    try {
      // The start waits on the server (connect, preamble queries, the dump
      // request); a server that stops answering meanwhile would hold it forever.
      // It ends with the stream: on the attempt's abort, or on a failure (the
      // liveness watchdog's, when the start takes longer than livenessTimeoutMs);
      // the finally's stop() then closes the decoder's connections.
      const starting = options.decoder.start({
        connection: options.connection,
        serverId: options.serverId,
        from: options.from,
        tables: options.watermarkTable ? [...options.tables, options.watermarkTable] : options.tables,
        heartbeatIntervalMs: heartbeatMs,
        onEvent: (event) => this.push(event),
        onError: (error) => this.fail(this.describe(error)),
      });
      starting.catch(() => undefined); // once the stream has ended, a late failure of the start means nothing
      const started = await Promise.race([starting.then(() => true), this.ended.then(() => false)]);
      if (!started) {
        if (this.failure && !options.signal.aborted) throw this.failure;
        return;
      }
      this.started = true;
      this.lastArrival = Date.now();
      options.logger.info('streaming the binlog', { from: formatBinlogPosition(options.from), serverId: options.serverId });
      options.onStreaming();
      for (let event = await this.next(); event; event = await this.next()) {
        this.busy = true;
        await this.handle(event, assembler);
        this.busy = false;
      }
      if (this.failure && !options.signal.aborted) throw this.failure;
    } finally {
      clearInterval(timer);
      options.signal.removeEventListener('abort', onAbort);
      await options.decoder.stop();
    }
  }

  /**
   * A batch that makes queued resync tasks durable, placed after every batch
   * handed over so far: the last handed-over position, with `tasks`.
   */
  requestBatch(tasks: ResyncTask[]): SourceBatch {
    return { events: [], checkpoint: serializeCheckpoint({ position: this.lastEmitted.position, resync: tasks }), commitTimeMs: this.lastEmitted.commitTimeMs };
  }

  /** Everything up to `position` is durable (used for the backlog metric). */
  acknowledge(position: BinlogPosition): void {
    this.acknowledged = position;
  }

  private async handle(event: DecodedEvent, assembler: MysqlTransactionAssembler): Promise<void> {
    const now = Date.now();
    const batch = event.kind === 'heartbeat' ? (this.queue.length === 0 ? assembler.idleBatch(now) : null) : assembler.onEvent(event);
    // A DDL statement changed captured tables: later events may need the new keys and JSON columns.
    for (const effect of this.pendingDdl.splice(0)) {
      await this.options.catalog.refresh(effect.table);
      if (effect.op === 'rename') await this.options.catalog.refresh(effect.to);
    }
    if (!batch) return;
    if (batch.events.length === 0 && event.kind !== 'heartbeat' && now - this.lastEmitMs < EMPTY_BATCH_INTERVAL_MS) return;
    this.lastEmitMs = now;
    // Position and resync tasks are read in the same synchronous step as the hand-over (see ResyncCoordinator.tasksForBatch).
    const { position } = parseCheckpoint(batch.checkpoint);
    this.lastEmitted = { position, commitTimeMs: batch.commitTimeMs };
    const resync = this.options.resync?.tasksForBatch();
    await this.options.emit(resync?.length ? { ...batch, checkpoint: serializeCheckpoint({ position, resync }) } : batch);
  }

  private push(event: DecodedEvent): void {
    this.lastArrival = Date.now();
    this.queue.push(event);
    this.queuedBytes += eventBytes(event);
    if (!this.paused && (this.queue.length >= HIGH_WATER || this.queuedBytes >= STREAM_QUEUE_BYTES)) {
      this.paused = true;
      this.options.decoder.pause();
    }
    this.notify();
  }

  private async next(): Promise<DecodedEvent | null> {
    while (this.queue.length === 0 && !this.failure && !this.options.signal.aborted) {
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    if (this.failure || this.options.signal.aborted) return null;
    const event = this.queue.shift()!;
    this.queuedBytes -= eventBytes(event);
    if (this.paused && this.queue.length <= LOW_WATER && this.queuedBytes <= STREAM_QUEUE_BYTES / 4) {
      this.paused = false;
      this.lastArrival = Date.now();
      this.options.decoder.resume();
    }
    return event;
  }

  /** Names where the stream was: the decoder's errors (e.g. the server's 1236 for a purged binlog) do not. */
  private describe(error: Error): Error {
    const { host, port } = this.options.connection;
    const described = new Error(`reading the binlog of ${host}:${port} from ${formatBinlogPosition(this.options.from)}: ${error.message}`);
    described.cause = error;
    return described;
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.markEnded();
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** Samples the binlog backlog and notices a silent connection (the liveness watchdog: a blackholed network sends no FIN). */
  private async tick(): Promise<void> {
    const silentMs = Date.now() - this.lastArrival;
    const { livenessTimeoutMs, connection } = this.options;
    if (this.options.signal.aborted || this.failure) return;
    if (this.busy || this.paused) this.lastArrival = Date.now(); // we are not reading: the silence is ours
    else if (livenessTimeoutMs > 0 && silentMs > livenessTimeoutMs && !this.started) {
      this.fail(
        new AttemptFailure(
          `binlog connection to ${connection.host}:${connection.port} did not start streaming within ${Math.round(silentMs / 1000)} s ` +
            `(the server did not answer the connect or the dump request; livenessTimeoutMs ${livenessTimeoutMs}): reconnecting`,
          'liveness_timeout',
        ),
      );
      return;
    } else if (livenessTimeoutMs > 0 && silentMs > livenessTimeoutMs) {
      this.fail(
        new AttemptFailure(
          `binlog connection to ${connection.host}:${connection.port} received nothing (no events, no heartbeats) for ${Math.round(silentMs / 1000)} s ` +
            `(livenessTimeoutMs ${livenessTimeoutMs}): treating it as dead and reconnecting`,
          'liveness_timeout',
        ),
      );
      return;
    }
    if (this.sampling) return; // the last backlog query has not come back
    this.sampling = true;
    try {
      const [logs] = await this.options.admin.query<RowDataPacket[]>('SHOW BINARY LOGS');
      this.options.report.backlogBytes(backlogBytes(logs.map((l) => ({ file: String(l.Log_name), size: Number(l.File_size) })), this.acknowledged));
    } catch (error) {
      if (!this.options.signal.aborted) this.options.logger.warn('could not sample the binlog backlog', { error: (error as Error).message });
    } finally {
      this.sampling = false;
    }
  }
}

/**
 * The heartbeat period asked of the server: the configured one, but at least
 * three per liveness timeout so an idle binlog never looks dead.
 */
export function serverHeartbeatMs(heartbeatIntervalMs: number, livenessTimeoutMs: number): number {
  const forLiveness = livenessTimeoutMs > 0 ? Math.max(1, Math.floor(livenessTimeoutMs / 3)) : 0;
  if (heartbeatIntervalMs <= 0) return forLiveness;
  return forLiveness > 0 ? Math.min(heartbeatIntervalMs, forLiveness) : heartbeatIntervalMs;
}

/** Bytes of binlog after `position`: the rest of its file plus every later file. */
export function backlogBytes(logs: Array<{ file: string; size: number }>, position: BinlogPosition): number {
  const sequence = fileSequence(position.file);
  let bytes = 0;
  for (const log of logs) {
    const logSequence = fileSequence(log.file);
    if (logSequence > sequence) bytes += log.size;
    else if (logSequence === sequence) bytes += Math.max(0, log.size - position.offset);
  }
  return bytes;
}
