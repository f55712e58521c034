import { Client } from 'pg';
import { runResyncTasks } from '../shared/resync-loop';
import { Attempt } from '../../core/runtime/attempt';
import { AttemptFailure } from '../../core/runtime/component-health';
import { Logger } from '../../core/runtime/logger';
import { ResyncRequest, Source, SourceStreamOptions } from '../../core/contracts/source';
import { withEpoch } from '../../core/event/version';
import { parseCheckpoint, PostgresCheckpoint, ServerHistory, SnapshotProgress, stampCheckpoint } from './checkpoint';
import { historyChange, identifyServer, ServerIdentity, TimelineSwitch } from './history';
import { defaultObjectName, PostgresSourceConfig } from './config';
import { formatLsn, Lsn, ZERO_LSN } from './lsn';
import { describeUndecodable, UndecodableSlotTracker } from './undecodable-slot';
import { catalogChangesSince, nextTransactionId, SLOT_CREATION_ATTEMPTS } from './slot-creation-race';
import { endClient } from './pg-session';
import { readPrimaryKeys } from './primary-keys';
import { pgTlsPeer } from './tls';
import { describeTlsFailure } from '../../core/net/tls';
import { CapturedTable, createSlot, createSlotWithSnapshot, describeLostSlot, dropSlot, prepareServer, slotConfirmedLsn, slotPlugin, slotWalStatus, tableName } from './slot';
import { watchTables } from './table-watch';
import { ResyncCoordinator } from './resync';
import { runSnapshot } from './snapshot';
import { TypeCatalog } from './type-catalog';
import { WalStream } from './wal-stream';

const CONNECT_TIMEOUT_MS = 10_000;
/** How often tables created under a `schema.*` pattern are looked for. */
const TABLE_WATCH_INTERVAL_MS = 5_000;

/** `host:port` of a postgres:// URL, for messages. */
export function serverOf(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname || 'localhost'}:${parsed.port || '5432'}`;
  } catch {
    return 'the configured server';
  }
}

/** What a start must do before streaming, decided from the saved checkpoint, the slot and the snapshot mode. */
type StartPlan =
  | { kind: 'stream'; from: Lsn }
  | { kind: 'new-snapshot'; dropSlot: boolean; reason: string; /** Set when positions went backwards: the source epoch to snapshot and stream under. */ epoch?: number }
  | { kind: 'resume-snapshot'; progress: SnapshotProgress }
  | { kind: 'create-slot-and-stream' };

/**
 * A Postgres source: bootstraps with a consistent snapshot taken at exactly
 * the slot's consistent point, then streams the slot (docs/architecture.md §3).
 */
export class PostgresSource implements Source {
  readonly name: string;
  private readonly slot: string;
  private readonly publication: string;
  private walStream: WalStream | null = null;
  private resyncCoordinator: ResyncCoordinator | null = null;
  private emit: SourceStreamOptions['emit'] | null = null;
  private admin: Client | null = null;
  /** Where the current attempt streams from, once it streams; with the tracker it tells a slot stuck on undecodable WAL. */
  private streamingFrom: Lsn | null = null;
  private readonly undecodable: UndecodableSlotTracker;

  constructor(private readonly config: PostgresSourceConfig, private readonly logger: Logger) {
    this.name = config.name;
    this.slot = config.slot ?? defaultObjectName(config.name);
    this.publication = config.publication ?? defaultObjectName(config.name);
    this.undecodable = UndecodableSlotTracker.of(serverOf(config.url), this.slot);
  }

  async stream(options: SourceStreamOptions): Promise<void> {
    this.streamingFrom = null;
    try {
      await this.run(options);
      this.undecodable.noteAttemptEnd(this.streamingFrom, null);
    } catch (error) {
      this.undecodable.noteAttemptEnd(this.streamingFrom, error);
      throw this.describe(error as Error);
    }
  }

  /**
   * One attempt: every connection it opens (control, slot, snapshot readers,
   * replication) ends the attempt when it fails, and every loop of the
   * attempt (snapshot, stream, heartbeats, resync) stops with it.
   */
  private async run(options: SourceStreamOptions): Promise<void> {
    const attempt = new Attempt(options.signal, { onAbandoned: (what) => this.logger.error(`source ${this.name}: ${what}`) });
    let resyncLoop: Promise<void> = Promise.resolve();
    await attempt.run(
      () => this.runAttempt({ ...options, signal: attempt.signal }, attempt, (loop) => (resyncLoop = loop)),
      async () => {
        await this.walStream?.close();
        await resyncLoop;
      },
    );
  }

  private async runAttempt({ from, emit: emitDurably, signal, onStreaming, progress, sourceDetails, paceResync }: SourceStreamOptions, attempt: Attempt, startedResync: (loop: Promise<void>) => void): Promise<void> {
    const server = serverOf(this.config.url);
    // Catalog and control queries use pg's normal parsers (booleans, ints); only row data is read as raw text.
    const admin = new Client({ connectionString: this.config.url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, keepAlive: true });
    this.admin = admin;
    admin.on('error', (error: Error) => {
      // Lost the control connection (server restart, network cut, pg_terminate_backend): end this attempt; the runner reconnects.
      this.logger.warn('control connection lost', { server, error: error.message });
      attempt.fail(new AttemptFailure(`control connection to ${server} lost: ${error.message}`, 'connection_lost', { cause: error }));
    });
    await admin.connect();
    const joined: CapturedTable[] = [];
    const tables = await prepareServer(admin, { sourceName: this.name, tables: this.config.tables, publication: this.publication, logger: this.logger, onJoined: (added) => joined.push(...added) });
    const { rows } = await admin.query<{ db: string }>('SELECT current_database() AS db');
    const db = rows[0].db;
    const primaryKeys = await readPrimaryKeys(admin, tables);
    const catalog = new TypeCatalog((sql, params) => admin.query(sql, params));

    const saved = from ? parseCheckpoint(from) : null;
    const { identity, history } = await identifyServer(this.config.url);
    const plan = await this.plan(admin, saved, identity, history, server);
    // Every version and checkpoint of this attempt carries the source epoch (core/event/version.ts) and this server's history.
    const epoch = plan.kind === 'new-snapshot' && plan.epoch !== undefined ? plan.epoch : (saved?.epoch ?? 0);
    const emit = stampedEmit(emitDurably, epoch, { systemId: identity.systemId, timeline: identity.timeline });
    let startLsn: Lsn;
    let captureStarted = false;
    const capturing = () => {
      if (!captureStarted) onStreaming();
      captureStarted = true;
    };
    if (plan.kind === 'stream') {
      startLsn = plan.from;
    } else if (plan.kind === 'create-slot-and-stream') {
      startLsn = await this.createSlotClearOfCatalogChanges(admin, () => createSlot(admin, this.slot), async () => undefined);
      this.logger.info('created replication slot (snapshot mode never: no snapshot)', { slot: this.slot, lsn: formatLsn(startLsn) });
    } else {
      if (plan.kind === 'new-snapshot' && plan.dropSlot) await dropSlot(admin, this.slot);
      const snapshotPlan = plan.kind === 'new-snapshot' ? await this.exportSnapshot(admin, plan.reason) : { progress: plan.progress, snapshotName: undefined, release: async () => undefined };
      capturing(); // the slot exists: every later change reaches the log
      const snapshotOptions = { url: this.config.url, sourceName: this.name, db, tables, primaryKeys, catalog, emit, report: progress, signal, logger: this.logger, sourceDetails };
      await runSnapshot({ ...snapshotOptions, ...this.config.snapshot, progress: snapshotPlan.progress, snapshotName: snapshotPlan.snapshotName, onImported: snapshotPlan.release });
      await snapshotPlan.release();
      if (signal.aborted) return;
      startLsn = snapshotPlan.progress.position;
      // The snapshot is complete once this checkpoint is durable: later starts stream.
      await emit({ events: [], checkpoint: formatLsn(startLsn), commitTimeMs: Date.now() });
      this.logger.info('snapshot complete; streaming from its consistent point', { lsn: formatLsn(startLsn) });
    }
    if (signal.aborted) return;
    const resync = new ResyncCoordinator({
      url: this.config.url,
      admin,
      sourceName: this.name,
      db,
      primaryKeys,
      catalog,
      chunkSize: this.config.snapshot.chunkSize,
      tasks: plan.kind === 'stream' ? [...(saved?.resync ?? []), ...this.joinedTasks(joined, primaryKeys)] : [],
      report: progress,
      logger: this.logger,
      pace: paceResync,
    });
    this.resyncCoordinator = resync;
    this.emit = emit;
    const stream = new WalStream({
      url: this.config.url,
      sourceName: this.name,
      sourceDetails,
      slot: this.slot,
      publication: this.publication,
      db,
      primaryKeys,
      catalog,
      admin,
      heartbeatIntervalMs: this.config.heartbeatIntervalMs,
      livenessTimeoutMs: this.config.livenessTimeoutMs,
      server,
      startLsn,
      resync,
      emit,
      onStreaming: () => {
        capturing();
        const watch = watchTables({
          admin, sourceName: this.name, patterns: this.config.tables, publication: this.publication, primaryKeys, captured: new Set(tables.map(tableName)),
          intervalMs: TABLE_WATCH_INTERVAL_MS, signal, logger: this.logger, onJoined: (names) => this.resync({ tables: names }).then(() => undefined),
        });
        startedResync(Promise.all([this.runResync(resync, signal), watch]).then(() => undefined));
        // Tables joined at this start are in the publication already: make their resync tasks durable now, not at the first chunk.
        if (joined.length > 0) void emit({ events: [], checkpoint: stream.checkpoint(), commitTimeMs: Date.now() }).catch(() => undefined);
      },
      report: progress,
      signal,
      logger: this.logger,
    });
    this.walStream = stream;
    this.streamingFrom = startLsn;
    await stream.run();
  }

  /** Tables added to `tables` since the last run: their existing rows are read through the resync path (issue 12.3). */
  private joinedTasks(joined: CapturedTable[], primaryKeys: Map<string, string[]>): { requestId: string; table: string; rows: number }[] {
    if (joined.length === 0 || this.config.snapshot.mode === 'never') return [];
    this.logger.info('tables joined the capture: reading their rows through the resync path', { tables: joined.map(tableName) });
    const requestId = `joined-${Date.now()}`;
    return joined.map(tableName).filter((t) => primaryKeys.has(t)).map((table) => ({ requestId, table, rows: 0 }));
  }

  async resync(request: ResyncRequest): Promise<{ requestId: string; joined: boolean }> {
    const [coordinator, stream, emit] = [this.resyncCoordinator, this.walStream, this.emit];
    if (!coordinator || !stream || !emit) throw new Error(`source ${this.name} is not streaming yet (snapshot or reconnect in progress); try again shortly`);
    const { requestId, joined } = await coordinator.request(request.tables, request.where);
    // An empty batch carries the new queue into a durable checkpoint.
    await emit({ events: [], checkpoint: stream.checkpoint(), commitTimeMs: Date.now() });
    if (joined) this.logger.info('resync request joined a queued one that has the same tables and condition and has not started', { requestId, tables: request.tables, where: request.where });
    else this.logger.info('resync requested', { requestId, tables: request.tables, where: request.where });
    return { requestId, joined };
  }

  async cancelResync(requestId: string): Promise<{ requestId: string; cancelled: string[] }> {
    const [coordinator, stream, emit] = [this.resyncCoordinator, this.walStream, this.emit];
    if (!coordinator || !stream || !emit) throw new Error(`source ${this.name} is not streaming yet (snapshot or reconnect in progress); try again shortly`);
    const cancelled = coordinator.cancel(requestId);
    if (cancelled.length === 0) throw new Error(`source ${this.name} has no resync ${requestId} queued or running (finished, dropped or never asked): see cdc status`);
    await emit({ events: [], checkpoint: stream.checkpoint(), commitTimeMs: Date.now() });
    return { requestId, cancelled };
  }

  /** Runs queued resync tasks until the stream stops; a task whose request is wrong (e.g. a bad WHERE) is dropped. */
  private runResync(coordinator: ResyncCoordinator, signal: AbortSignal): Promise<void> {
    return runResyncTasks(coordinator, signal, this.logger, (error) => String((error.cause as { code?: string } | undefined)?.code ?? '').startsWith('42'));
  }


  async acknowledge(checkpoint: string): Promise<void> {
    await this.walStream?.acknowledge(parseCheckpoint(checkpoint).position);
  }

  async close(): Promise<void> {
    await this.walStream?.close();
    this.walStream = null;
    if (this.admin) await endClient(this.admin);
    this.admin = null;
  }

  private async plan(admin: Client, checkpoint: PostgresCheckpoint | null, identity: ServerIdentity, history: TimelineSwitch[], server: string): Promise<StartPlan> {
    const mode = this.config.snapshot.mode;
    const plugin = await slotPlugin(admin, this.slot);
    if (plugin !== null && plugin !== 'pgoutput') {
      throw new Error(`replication slot ${this.slot} exists with plugin "${plugin}", expected "pgoutput": drop it (SELECT pg_drop_replication_slot('${this.slot}')) or configure another slot name`);
    }
    const slotExists = plugin !== null;
    if (!checkpoint) {
      if (mode === 'never') return slotExists ? { kind: 'stream', from: ZERO_LSN } : { kind: 'create-slot-and-stream' };
      return { kind: 'new-snapshot', dropSlot: slotExists, reason: slotExists ? 'first start with a leftover slot (no saved position): recreating it' : 'first start' };
    }
    const changed = historyChange(checkpoint, identity, history, server);
    if (changed) {
      // Positions went backwards: versions made from them would lose to the stored ones, and the sinks would freeze silently.
      const epoch = (checkpoint.epoch ?? 0) + 1;
      if (checkpoint.snapshot || mode === 'when_needed' || mode === 'always') {
        this.logger.warn('the source server\'s history changed: re-snapshotting under a new source epoch (rows deleted meanwhile are removed)', { server, change: changed, epoch });
        return { kind: 'new-snapshot', dropSlot: slotExists, reason: `${changed}; re-snapshotting under source epoch ${epoch}`, epoch };
      }
      throw new Error(
        `source ${this.name}: cannot resume at the saved position ${formatLsn(checkpoint.position)} on ${server}: ${changed}. ` +
          `Streaming on would hand the sinks lower versions than they hold, and they would ignore every change. ` +
          `Set snapshot.mode: when_needed on this source to re-snapshot under a new source epoch (its versions beat the stored ones; rows deleted meanwhile are removed), ` +
          `or point the source back at the server it was reading`,
      );
    }
    if (slotExists && (await slotWalStatus(admin, this.slot)) === 'lost') {
      // Reported as a restart (reason slot_lost: cdc_source_up 0, /readyz, status); with when_needed the next attempt finds no slot and re-snapshots.
      const lost = await describeLostSlot(admin, this.slot, formatLsn(checkpoint.position));
      if (mode === 'never' || (mode === 'initial' && !checkpoint.snapshot)) {
        throw new AttemptFailure(`source ${this.name}: ${lost}: set snapshot.mode: when_needed to re-snapshot (rows deleted meanwhile are removed), and raise max_slot_wal_keep_size`, 'slot_lost');
      }
      if (mode === 'always') return { kind: 'new-snapshot', dropSlot: true, reason: `${lost} (snapshot mode always re-snapshots anyway)` };
      await dropSlot(admin, this.slot);
      throw new AttemptFailure(`source ${this.name}: ${lost}: dropped the slot, re-snapshotting (snapshot.mode ${mode}; rows deleted meanwhile are removed)`, 'slot_lost');
    }
    const stuck = slotExists ? this.undecodable.stuckAt(checkpoint.position) : null;
    if (stuck) {
      const what = await describeUndecodable(admin, this.slot, stuck);
      if (mode === 'never' || (mode === 'initial' && !checkpoint.snapshot)) {
        throw new AttemptFailure(
          `source ${this.name}: ${what}: set snapshot.mode: when_needed to re-snapshot (the slot is dropped; rows deleted meanwhile are removed), ` +
            `or drop the slot yourself (SELECT pg_drop_replication_slot('${this.slot}')) and delete the saved position to start over`,
          'slot_lost',
        );
      }
      this.undecodable.clear();
      this.logger.error(`source ${this.name}: ${what}: dropping the slot and re-snapshotting (snapshot.mode ${mode}; rows deleted meanwhile are removed)`);
      return { kind: 'new-snapshot', dropSlot: true, reason: `${what}: dropped the slot, re-snapshotting` };
    }
    if (checkpoint.snapshot) {
      return slotExists
        ? { kind: 'resume-snapshot', progress: checkpoint.snapshot }
        : { kind: 'new-snapshot', dropSlot: false, reason: `slot ${this.slot} disappeared during the snapshot: starting the snapshot again` };
    }
    if (!slotExists) {
      if (mode === 'when_needed') return { kind: 'new-snapshot', dropSlot: false, reason: `slot ${this.slot} is missing (snapshot mode when_needed)` };
      throw new Error(
        `replication slot ${this.slot} is missing, so the changes after ${formatLsn(checkpoint.position)} can no longer be streamed ` +
          `(was it dropped, or invalidated by max_slot_wal_keep_size?): set snapshot.mode: when_needed to re-snapshot, ` +
          `or delete the saved position to start over with a new snapshot`,
      );
    }
    if (mode === 'always') return { kind: 'new-snapshot', dropSlot: true, reason: 'snapshot mode always' };
    const confirmed = await slotConfirmedLsn(admin, this.slot);
    if (confirmed !== null && confirmed > checkpoint.position) {
      // The slot was made (or advanced) after the saved position: the changes in between were never decoded for us.
      const gap = `replication slot ${this.slot} starts at ${formatLsn(confirmed)}, after the saved position ${formatLsn(checkpoint.position)} (recreated or advanced by someone else), so the changes in between are lost to it`;
      if (mode === 'when_needed') return { kind: 'new-snapshot', dropSlot: true, reason: `${gap} (snapshot mode when_needed)` };
      throw new Error(`source ${this.name}: ${gap}: set snapshot.mode: when_needed to re-snapshot, or delete the saved position to start over with a new snapshot`);
    }
    return { kind: 'stream', from: checkpoint.position };
  }

  /**
   * Creates the slot with `create`, and again (dropping it, `discard`ing what
   * came with it) while a catalog change committed during the creation could
   * have left it unable to decode (slot-creation-race.ts).
   */
  private async createSlotClearOfCatalogChanges<T>(admin: Client, create: () => Promise<T>, discard: (made: T) => Promise<void>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const since = await nextTransactionId(admin);
      const made = await create();
      const changed = await catalogChangesSince(admin, since);
      if (changed.length === 0) return made;
      if (attempt >= SLOT_CREATION_ATTEMPTS) {
        this.logger.warn(`the catalog changed while replication slot ${this.slot} was created, ${attempt} times in a row: keeping it; should streaming fail at one position with "could not map filenode", the source says so and, with snapshot.mode when_needed, re-snapshots`, { slot: this.slot, changed });
        return made;
      }
      this.logger.info('the catalog changed while the replication slot was created, which can leave it unable to decode later changes: creating it again', { slot: this.slot, changed, attempt });
      await dropSlot(admin, this.slot);
      await discard(made);
    }
  }

  private async exportSnapshot(admin: Client, reason: string): Promise<{ progress: SnapshotProgress; snapshotName: string; release(): Promise<void> }> {
    const exported = await this.createSlotClearOfCatalogChanges(admin, () => createSlotWithSnapshot(this.config.url, this.slot), (made) => made.release());
    this.logger.info('created replication slot with an exported snapshot', { slot: this.slot, lsn: formatLsn(exported.consistentPoint), reason });
    let released = false;
    return {
      progress: { position: exported.consistentPoint, tables: {} },
      snapshotName: exported.snapshotName,
      release: async () => {
        if (released) return;
        released = true;
        await exported.release();
      },
    };
  }

  private describe(error: Error): Error {
    if (error.message.startsWith(`source ${this.name}`)) return error;
    const tls = describeTlsFailure(error, pgTlsPeer(this.config.url, `source ${this.name} (postgres)`));
    if (tls) return tls;
    const described = new Error(`source ${this.name} (postgres, slot ${this.slot}): ${error.message}`);
    described.cause = error;
    return described;
  }
}

/** `emit` with every version moved into `epoch` and every checkpoint stamped with it and the server's history. */
function stampedEmit(emit: SourceStreamOptions['emit'], epoch: number, server: ServerHistory): SourceStreamOptions['emit'] {
  return (batch) => {
    if (epoch > 0) for (const event of batch.events) event.source.version = withEpoch(event.source.version, epoch);
    return emit({ ...batch, checkpoint: stampCheckpoint(batch.checkpoint, epoch, server) });
  };
}
