import { Connection, RowDataPacket } from 'mysql2/promise';
import { runResyncTasks } from '../shared/resync-loop';
import { Attempt, untilAborted } from '../../core/runtime/attempt';
import { AttemptFailure } from '../../core/runtime/component-health';
import { Logger } from '../../core/runtime/logger';
import { ResyncRequest, Source, SourceStreamOptions } from '../../core/contracts/source';
import { BinlogDecoder } from './binlog-decoder';
import { BinlogPosition, fileSequence, formatBinlogPosition, packBinlogPosition } from './binlog-position';
import { BinlogStream } from './binlog-stream';
import { MysqlCatalog } from './catalog';
import { MysqlCheckpoint, parseCheckpoint, serializeCheckpoint, SnapshotProgress, withCheckpointOrigin } from './checkpoint';
import { describeSaved, findGtidPosition, serverIdentity } from './failover';
import { MysqlSourceConfig, watermarkTableOf } from './config';
import { NativeRowsDecoder } from './native-rows-decoder';
import { destroyConnection, openConnection, parseMysqlUrl, quitConnection } from './connection';
import { ResyncCoordinator } from './resync';
import { ResyncTaskError } from './resync-reader';
import { currentPosition, openSnapshot, readSnapshot, SnapshotStart } from './snapshot';
import { binlogWentBack, checkServer, serverInfo } from './startup-checks';
import { withEpoch } from '../../core/event/version';
import { WatermarkTable } from './watermark-table';
import { TRANSACTION_PART_BYTES, TRANSACTION_PART_EVENTS } from '../shared/transaction-parts';

/** What a start must do before streaming, decided from the saved checkpoint, the binlog and the snapshot mode. */
type StartPlan =
  | { kind: 'stream'; from: BinlogPosition; /** Set after a failover whose positions went backwards. */ epoch?: number; history?: SourceHistory }
  | { kind: 'stream-from-end' }
  | { kind: 'new-snapshot'; reason: string; /** Set when positions went backwards: the source epoch to snapshot and stream under. */ epoch?: number; history?: SourceHistory }
  | { kind: 'resume-snapshot'; progress: SnapshotProgress };

/** What happened to the source's history, for the operator (metric, status): `kind` and what the source did. */
interface SourceHistory {
  kind: 'positions-went-back' | 'failover-resumed' | 'failover-resnapshot';
  detail: string;
}

/** Seams for tests and for a replacement decoder; not part of the config. */
export interface MysqlSourceInternals {
  createDecoder?: () => BinlogDecoder;
  /** Force how the snapshot finds its position (default: consistent on MariaDB, ftwrl elsewhere). */
  snapshotStart?: Exclude<SnapshotStart, 'resume'>;
}

/**
 * A MySQL/MariaDB source: bootstraps with a consistent snapshot whose binlog
 * position is known exactly, then streams the binlog from that position
 * (docs/architecture.md §3). The server keeps no state for us: the runtime's saved
 * checkpoint is the only record of where to resume.
 */
export class MysqlSource implements Source {
  readonly name: string;
  private admin: Connection | null = null;
  private binlogStream: BinlogStream | null = null;
  private resyncCoordinator: ResyncCoordinator | null = null;
  private emit: SourceStreamOptions['emit'] | null = null;

  constructor(private readonly config: MysqlSourceConfig, private readonly logger: Logger, private readonly internals: MysqlSourceInternals = {}) {
    this.name = config.name;
  }

  async stream(options: SourceStreamOptions): Promise<void> {
    try {
      await this.run(options);
    } catch (error) {
      throw this.describe(error as Error);
    }
  }

  async acknowledge(checkpoint: string): Promise<void> {
    const parsed = parseCheckpoint(checkpoint);
    if (!parsed.snapshot) this.binlogStream?.acknowledge(parsed.position);
  }

  /** Queues tables for a lock-free re-read (resync.ts); resolves once the queue is handed over in a checkpoint. */
  async resync(request: ResyncRequest): Promise<{ requestId: string; joined: boolean }> {
    const [coordinator, stream, emit] = [this.resyncCoordinator, this.binlogStream, this.emit];
    if (!coordinator || !stream || !emit) throw new Error(`source ${this.name} is not streaming yet (snapshot or reconnect in progress); try again shortly`);
    const { requestId, joined } = await coordinator.request(request.tables, request.where);
    // An empty batch carries the new queue into a durable checkpoint.
    await emit(stream.requestBatch(coordinator.tasksForRequest()));
    if (joined) this.logger.info('resync request joined a queued one that has the same tables and condition and has not started', { requestId, tables: request.tables, where: request.where });
    else this.logger.info('resync requested', { requestId, tables: request.tables, where: request.where });
    return { requestId, joined };
  }

  async cancelResync(requestId: string): Promise<{ requestId: string; cancelled: string[] }> {
    const [coordinator, stream, emit] = [this.resyncCoordinator, this.binlogStream, this.emit];
    if (!coordinator || !stream || !emit) throw new Error(`source ${this.name} is not streaming yet (snapshot or reconnect in progress); try again shortly`);
    const cancelled = coordinator.cancel(requestId);
    if (cancelled.length === 0) throw new Error(`source ${this.name} has no resync ${requestId} queued or running (finished, dropped or never asked): see cdc status`);
    await emit(stream.requestBatch(coordinator.tasksForRequest()));
    return { requestId, cancelled };
  }

  async close(): Promise<void> {
    this.binlogStream = null;
    this.resyncCoordinator = null;
    const admin = this.admin;
    this.admin = null;
    // A polite QUIT, but never waiting for long: a blackholed network does not answer it.
    if (admin) await quitConnection(admin);
  }

  /**
   * One attempt: a lost control, snapshot or binlog connection ends it, and
   * every loop of the attempt (snapshot, binlog stream, resync) stops with it.
   * No await of the attempt outlives its signal: each connection it opens ends
   * when the signal aborts (failing its query in flight), the binlog stream
   * races the decoder's start, and a hand-over to the runtime (emit) is not
   * waited for past the end (the runtime still appends what it was handed).
   */
  private async run(options: SourceStreamOptions): Promise<void> {
    const attempt = new Attempt(options.signal, { onAbandoned: (what) => this.logger.error(`source ${this.name}: ${what}`) });
    let resyncLoop: Promise<void> = Promise.resolve();
    await attempt.run(
      () => this.runAttempt({ ...options, signal: attempt.signal }, attempt, (loop) => (resyncLoop = loop)),
      () => resyncLoop,
    );
  }

  private async runAttempt({ from, emit, signal, onStreaming: reportStreaming, progress, sourceDetails, paceResync }: SourceStreamOptions, attempt: Attempt, startedResync: (loop: Promise<void>) => void): Promise<void> {
    let streaming = false;
    const onStreaming = () => {
      if (!streaming) reportStreaming();
      streaming = true;
    };
    const connection = parseMysqlUrl(this.config.url, this.config.ssl);
    const server = `${connection.host}:${connection.port}`;
    const admin = await openConnection(connection, {
      signal,
      onLost: (error) => {
        if (signal.aborted) return; // closed because the attempt ended (openConnection's signal): not a loss
        this.logger.warn('control connection lost', { server, error: error.message });
        attempt.fail(new AttemptFailure(`control connection to ${server} lost: ${error.message}`, 'connection_lost', { cause: error }));
      },
    });
    this.admin = admin;
    const info = await serverInfo(admin);
    const identity = await serverIdentity(admin);
    await checkServer(admin, { serverId: this.config.serverId, tables: this.config.tables, info });
    const watermarkTable = watermarkTableOf(this.config);
    const catalog = new MysqlCatalog(admin, this.config.tables, [watermarkTable]);
    await catalog.load(`source ${this.name}`);

    const saved = from ? parseCheckpoint(from) : null;
    const plan = await this.plan(admin, saved, { identity, server });
    // Every version and checkpoint of this attempt carries the source epoch (core/event/version.ts);
    // every checkpoint names the server its position belongs to.
    const epoch = (plan.kind === 'new-snapshot' || plan.kind === 'stream') && plan.epoch !== undefined ? plan.epoch : (saved?.epoch ?? 0);
    emit = originEmit(emit, epoch, identity);
    const history = plan.kind === 'new-snapshot' || plan.kind === 'stream' ? plan.history : undefined;
    progress.history?.({ epoch, ...(history ? { kind: history.kind, detail: history.detail } : {}) });
    let start: BinlogPosition;
    if (plan.kind === 'stream') {
      start = plan.from;
    } else if (plan.kind === 'stream-from-end') {
      start = await currentPosition(admin);
      this.logger.info('snapshot mode never: streaming from the end of the binlog', { position: formatBinlogPosition(start) });
      await untilAborted(emit({ events: [], checkpoint: serializeCheckpoint({ position: start }), commitTimeMs: Date.now() }), signal);
    } else {
      const snapshotStart = plan.kind === 'resume-snapshot' ? 'resume' : (this.internals.snapshotStart ?? (info.mariadb ? 'consistent' : 'ftwrl'));
      const snapshot = await openSnapshot(connection, snapshotStart, signal);
      // The attempt ended (another connection failed, or the service stops): a query in flight must not hold it up.
      const endSnapshot = () => destroyConnection(snapshot.connection, 'the snapshot read stopped: its attempt ended');
      signal.addEventListener('abort', endSnapshot, { once: true });
      try {
        const snapshotProgress = plan.kind === 'resume-snapshot' ? plan.progress : { position: snapshot.position!, tables: {} };
        this.logger.info(plan.kind === 'resume-snapshot' ? 'resuming the snapshot' : 'snapshot started', {
          position: formatBinlogPosition(snapshotProgress.position),
          ...(plan.kind === 'new-snapshot' ? { reason: plan.reason, lock: snapshotStart === 'ftwrl' ? 'FLUSH TABLES WITH READ LOCK (released)' : 'none' } : {}),
        });
        onStreaming(); // the position is fixed: every change after it will be streamed
        const snapshotOptions = { sourceName: this.name, catalog, progress: snapshotProgress, chunkSize: this.config.snapshot.chunkSize, sourceDetails };
        await readSnapshot(snapshot.connection, { ...snapshotOptions, emit: (batch) => untilAborted(emit(batch), signal), report: progress, signal, logger: this.logger });
        start = snapshotProgress.position;
      } finally {
        signal.removeEventListener('abort', endSnapshot);
        await quitConnection(snapshot.connection);
      }
      if (signal.aborted) return;
      // The snapshot is complete once this checkpoint is durable: later starts stream.
      await untilAborted(emit({ events: [], checkpoint: serializeCheckpoint({ position: start }), commitTimeMs: Date.now() }), signal);
      this.logger.info('snapshot complete; streaming from its position', { position: formatBinlogPosition(start) });
    }
    if (signal.aborted) return;
    const resync = new ResyncCoordinator({
      connection,
      admin,
      sourceName: this.name,
      catalog,
      watermarks: new WatermarkTable(watermarkTable, this.name, info.account),
      chunkSize: this.config.snapshot.chunkSize,
      // A new snapshot re-reads everything anyway: only a plain restart keeps the queue.
      tasks: plan.kind === 'stream' ? (saved?.resync ?? []) : [],
      report: progress,
      logger: this.logger,
      pace: paceResync,
    });
    const stream = new BinlogStream({
      sourceName: this.name,
      sourceDetails,
      decoder: this.internals.createDecoder?.() ?? new NativeRowsDecoder(this.logger),
      connection,
      serverId: this.config.serverId,
      tables: this.config.tables,
      catalog,
      admin,
      from: start,
      heartbeatIntervalMs: this.config.heartbeatIntervalMs,
      livenessTimeoutMs: this.config.livenessTimeoutMs,
      maxBatchEvents: TRANSACTION_PART_EVENTS,
      maxBatchBytes: TRANSACTION_PART_BYTES,
      watermarkTable,
      resync,
      emit: (batch) => untilAborted(emit(batch), signal),
      onStreaming: () => {
        onStreaming();
        startedResync(this.runResync(resync, signal));
      },
      report: progress,
      signal,
      logger: this.logger,
    });
    this.binlogStream = stream;
    this.resyncCoordinator = resync;
    this.emit = emit;
    await stream.run();
  }

  /** Runs queued resync tasks until the stream stops; a task whose request is wrong (e.g. a bad WHERE) is dropped. */
  private runResync(coordinator: ResyncCoordinator, signal: AbortSignal): Promise<void> {
    return runResyncTasks(coordinator, signal, this.logger, (error) => error instanceof ResyncTaskError);
  }


  private async plan(admin: Connection, checkpoint: MysqlCheckpoint | null, here: { identity: string; server: string }): Promise<StartPlan> {
    const mode = this.config.snapshot.mode;
    if (!checkpoint) return mode === 'never' ? { kind: 'stream-from-end' } : { kind: 'new-snapshot', reason: 'first start' };
    // Checkpoints written before the server was recorded take the same-server path once, then carry it.
    if (checkpoint.server !== undefined && checkpoint.server !== here.identity) return this.planFailover(admin, checkpoint, here);
    const wentBack = await binlogWentBack(admin, checkpoint.snapshot?.position ?? checkpoint.position);
    if (wentBack) {
      const epoch = (checkpoint.epoch ?? 0) + 1;
      const saved = formatBinlogPosition(checkpoint.position);
      if (checkpoint.snapshot || mode === 'when_needed' || mode === 'always') {
        const reason = `binlog positions went backwards since the saved position ${saved}: ${wentBack}; re-snapshotting under source epoch ${epoch}`;
        return { kind: 'new-snapshot', reason, epoch, history: { kind: 'positions-went-back', detail: reason } };
      }
      throw new Error(
        `cannot resume at the saved position ${saved}: ${wentBack}, so the binlog there is another history. ` +
          `Re-snapshot: set snapshot.mode: when_needed on this source (it then re-snapshots under a new source epoch, whose versions beat the stored ones)`,
      );
    }
    const missing = await missingFrom(admin, checkpoint.snapshot?.position ?? checkpoint.position);
    if (checkpoint.snapshot) {
      if (!missing) return { kind: 'resume-snapshot', progress: checkpoint.snapshot };
      return { kind: 'new-snapshot', reason: `the binlog at the interrupted snapshot's position is gone (${missing}): starting the snapshot again` };
    }
    if (missing) {
      if (mode === 'when_needed') return { kind: 'new-snapshot', reason: `${missing} (snapshot mode when_needed)` };
      throw new Error(
        `cannot resume at the saved position ${formatBinlogPosition(checkpoint.position)}: ${missing}, so the changes after it can no longer be streamed. ` +
          `Re-snapshot: set snapshot.mode: when_needed on this source (it then re-snapshots by itself), or delete the saved position to start over with a new snapshot`,
      );
    }
    if (mode === 'always') return { kind: 'new-snapshot', reason: 'snapshot mode always' };
    return { kind: 'stream', from: checkpoint.position };
  }

  /**
   * The saved position belongs to another server (a failover, or a VIP, DNS or
   * URL now leading elsewhere): its file:offset means nothing here, its GTID
   * does. Resume where the GTID says, under a new epoch if this server's
   * positions are lower; when this server lacks the saved transactions,
   * re-snapshot (when_needed) or stop and say so.
   */
  private async planFailover(admin: Connection, checkpoint: MysqlCheckpoint, here: { identity: string; server: string }): Promise<StartPlan> {
    const mode = this.config.snapshot.mode;
    const saved = describeSaved(checkpoint.position, checkpoint.server);
    const next = (checkpoint.epoch ?? 0) + 1;
    const newServer = `server ${here.identity} at ${here.server}`;
    if (checkpoint.snapshot || mode === 'always') {
      const reason = `the source now reads ${newServer}, not server ${checkpoint.server} where ${checkpoint.snapshot ? 'the interrupted snapshot began' : 'the saved position was'} (failover); re-snapshotting under source epoch ${next}`;
      return { kind: 'new-snapshot', reason, epoch: next, history: { kind: 'failover-resnapshot', detail: reason } };
    }
    const lookup = checkpoint.position.gtid
      ? await findGtidPosition(admin, checkpoint.position.gtid)
      : ({ found: false, reason: 'no GTID was saved with the position (the old server had no GTIDs)' } as const);
    if (lookup.found) {
      // New versions must beat every stored one: made from this server's positions, they do only if those are higher.
      const backwards = packBinlogPosition(lookup.position) < packBinlogPosition(checkpoint.position);
      const epoch = backwards ? next : (checkpoint.epoch ?? 0);
      const detail =
        `failover: the saved position ${saved} belongs to another server; the source now reads ${newServer} and resumes at ` +
        `${formatBinlogPosition(lookup.position)}, where its binlog continues after GTID ${checkpoint.position.gtid}` +
        (backwards ? `; its positions are lower than the saved one, so versions move to source epoch ${epoch}` : '') +
        (lookup.note ? `; ${lookup.note}` : '');
      this.logger.warn(detail, { source: this.name, savedServer: checkpoint.server, server: here.identity, from: formatBinlogPosition(lookup.position), epoch });
      return { kind: 'stream', from: lookup.position, epoch, history: { kind: 'failover-resumed', detail } };
    }
    if (mode === 'when_needed') {
      const reason = `failover: the saved position ${saved} belongs to another server, and ${newServer} cannot continue after it: ${lookup.reason}; re-snapshotting under source epoch ${next}`;
      return { kind: 'new-snapshot', reason, epoch: next, history: { kind: 'failover-resnapshot', detail: reason } };
    }
    throw new Error(
      `cannot resume on ${newServer}: the saved position ${saved} belongs to server ${checkpoint.server}, and this server cannot continue after it: ${lookup.reason}. ` +
        `Re-snapshot: set snapshot.mode: when_needed on this source (it then re-snapshots under source epoch ${next}, whose versions beat the stored ones), ` +
        `or point the source back at server ${checkpoint.server} if it is still the primary`,
    );
  }

  private describe(error: Error): Error {
    if (error.message.startsWith(`source ${this.name}`)) return error;
    const described = new Error(`source ${this.name} (mysql, server-id ${this.config.serverId}): ${error.message}`);
    described.cause = error;
    return described;
  }
}

/** `emit` with every version moved into `epoch` and every checkpoint stamped with it and the server it was read from. */
function originEmit(emit: SourceStreamOptions['emit'], epoch: number, server: string): SourceStreamOptions['emit'] {
  return (batch) => {
    if (epoch > 0) for (const event of batch.events) event.source.version = withEpoch(event.source.version, epoch);
    return emit({ ...batch, checkpoint: withCheckpointOrigin(batch.checkpoint, { epoch, server }) });
  };
}

/** Why the binlog no longer holds `position` (purged, or reset), or null when it does. */
async function missingFrom(admin: Connection, position: BinlogPosition): Promise<string | null> {
  const [logs] = await admin.query<RowDataPacket[]>('SHOW BINARY LOGS');
  const files = logs.map((l) => ({ name: String(l.Log_name), size: Number(l.File_size) }));
  const file = files.find((f) => f.name === position.file);
  if (file && position.offset <= file.size) return null;
  if (file) return `binlog ${position.file} is only ${file.size} bytes long now (was the binlog reset with RESET MASTER?)`;
  const oldest = files[0]?.name;
  const purged = oldest && fileSequence(oldest) > fileSequence(position.file);
  return purged
    ? `binlog ${position.file} was purged from the server (the oldest binlog there is ${oldest})`
    : `binlog ${position.file} is not on the server (its binlogs: ${files.map((f) => f.name).join(', ') || 'none'})`;
}
