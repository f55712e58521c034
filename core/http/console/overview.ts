import { readdir, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { ChangeLog } from '../../log/change-log';
import { TablePauses } from '../../runtime/table-pauses';
import { MetricsHistory, readPoint } from '../history';
import { Metrics } from '../metrics';
import { ServiceEvents } from './events-tap';
import { ResyncTracker } from './resync-tracker';

/** What the console's page draws, in one JSON document (GET /console/overview). */
export interface Overview {
  service: string;
  now: string;
  sources: SourceView[];
  log: LogView;
  sinks: SinkView[];
  resyncs: ReturnType<ResyncTracker['list']>;
}

export interface Progress {
  rows: number;
  /** Estimated total; null when the source gave no estimate. */
  total: number | null;
  percent: number | null;
  etaSeconds: number | null;
}

interface SourceView {
  name: string;
  state: 'snapshotting' | 'streaming' | 'starting' | 'reconnecting' | 'stopped';
  lastError: string | null;
  /** When the current state began (from the component's health, when it reports one). */
  since: string | null;
  position: string | null;
  lagSeconds: number;
  backlogBytes: number;
  eventsTotal: number;
  eventsPerSecond: number | null;
  tables: Array<{ table: string; snapshot: Progress | null; resync: (Progress & { requestId: string; where?: string; queued: boolean }) | null }>;
}

interface LogView {
  type: string;
  partitions: number;
  endOffsets: number[];
  sizeBytes: number | null;
  diskFreeBytes: number | null;
  lastCompaction: ServiceEvents['lastCompaction'];
}

interface SinkView {
  name: string;
  state: 'streaming' | 'reprocessing' | 'starting' | 'reconnecting' | 'stopped';
  lastError: string | null;
  since: string | null;
  lagEvents: number;
  lagSeconds: number;
  eventsTotal: number;
  eventsPerSecond: number | null;
  generation: number | null;
  reprocess: Record<string, unknown> | null;
  deadLetters: number;
  tables: Array<{ table: string; paused: boolean; since: string | null; heldEvents: number }>;
}

interface Checkpoint {
  position?: string;
  snapshot?: { tables: Record<string, { done: boolean; rows: number }> };
  resync?: Array<{ requestId: string; table: string; where?: string; rows: number }>;
}

export interface OverviewSources {
  serviceName: string;
  log: ChangeLog;
  logType: string;
  /** Embedded log directory (size on disk); null for Kafka. */
  logDir: string | null;
  metrics: Metrics;
  history: MetricsHistory;
  events: ServiceEvents;
  pauses: TablePauses;
  resyncs: ResyncTracker;
  /** Captured tables per source (from the config). */
  tables: Record<string, string[]>;
  status(): Promise<unknown>;
}

/** Snapshot and resync rates: first sighting of each progress, to compute an ETA. */
const firstSeen = new Map<string, { rows: number; t: number }>();

export async function buildOverview(from: OverviewSources): Promise<Overview> {
  const [status, point, snapshotRows, snapshotRemaining, deadLetters, diskFree, ends] = await Promise.all([
    from.status() as Promise<{ sources: Array<Record<string, unknown>>; sinks: Array<Record<string, unknown>> }>,
    readPoint(from.metrics),
    from.metrics.snapshotRows.get(),
    from.metrics.snapshotRemainingRows.get(),
    from.metrics.sinkDeadLetters.get(),
    from.metrics.logDiskFreeBytes.get(),
    from.log.endOffsets().catch(() => [] as number[]),
  ]);
  const rates = from.history.rates(point);
  const metricOf = (values: Array<{ labels: Record<string, unknown>; value: number }>, source: string, table: string) =>
    values.find((v) => v.labels.source === source && v.labels.table === table)?.value ?? 0;
  from.resyncs.observe(status.sources.map((s) => ({ source: String(s.name), checkpoint: parseCheckpoint(s.checkpoint) })));

  const sources: SourceView[] = status.sources.map((s) => {
    const name = String(s.name);
    const checkpoint = parseCheckpoint(s.checkpoint);
    const metrics = point.sources[name] ?? { lagSeconds: 0, backlogBytes: 0, eventsTotal: 0 };
    const snapshotting = !!checkpoint.snapshot && Object.values(checkpoint.snapshot.tables).some((t) => !t.done);
    const problem = from.events.problems.get(name);
    const tables = (from.tables[name] ?? []).map((table) => {
      const snap = checkpoint.snapshot?.tables[table];
      const remaining = metricOf(snapshotRemaining.values, name, table);
      const snapshot = snap ? progress(`snapshot\u0000${name}\u0000${table}`, snap.rows, snap.done ? snap.rows : snap.rows + remaining, snap.done) : null;
      const tasks = (checkpoint.resync ?? []).filter((t) => !from.resyncs.finished(t.requestId, t.table));
      const index = tasks.findIndex((t) => t.table === table);
      const task = tasks[index];
      // Rows counted with the remaining-rows gauge (same moment) when the request was made in this process; else the checkpoint's.
      const base = task && index === 0 ? from.resyncs.baseRows(task.requestId, table) : undefined;
      const rows = task ? (base !== undefined ? Math.max(0, metricOf(snapshotRows.values, name, table) - base) : task.rows) : 0;
      const resync = task
        ? { ...progress(`resync\u0000${task.requestId}\u0000${table}`, rows, remaining > 0 && index === 0 ? rows + remaining : null, false), requestId: task.requestId, where: task.where, queued: index > 0 }
        : null;
      return { table, snapshot, resync };
    });
    const health = healthOf(s);
    return {
      name,
      state: snapshotting ? 'snapshotting' : s.ready ? 'streaming' : downState(health, problem),
      lastError: s.ready ? null : (health?.lastError ?? problem?.message ?? null),
      since: health?.since ?? null,
      position: checkpoint.position ?? null,
      lagSeconds: metrics.lagSeconds,
      backlogBytes: metrics.backlogBytes,
      eventsTotal: metrics.eventsTotal,
      eventsPerSecond: rates.sources[name] ?? null,
      tables,
    };
  });

  const pauses = from.pauses.status();
  const allTables = Object.values(from.tables).flat();
  const sinks: SinkView[] = status.sinks.map((s) => {
    const name = String(s.name);
    const metrics = point.sinks[name] ?? { lagEvents: 0, lagSeconds: 0, eventsTotal: 0 };
    const problem = from.events.problems.get(name);
    const reprocess = (s.reprocess as Record<string, unknown> | undefined) ?? null;
    const health = healthOf(s);
    return {
      name,
      state: s.ready ? (reprocess ? 'reprocessing' : 'streaming') : downState(health, problem),
      lastError: s.ready ? null : (health?.lastError ?? problem?.message ?? null),
      since: health?.since ?? null,
      lagEvents: metrics.lagEvents,
      lagSeconds: metrics.lagSeconds,
      eventsTotal: metrics.eventsTotal,
      eventsPerSecond: rates.sinks[name] ?? null,
      generation: typeof s.generation === 'number' ? s.generation : null,
      reprocess,
      deadLetters: deadLetters.values.filter((v) => v.labels.sink === name).reduce((n, v) => n + v.value, 0),
      tables: allTables.map((table) => {
        const pause = pauses.find((p) => p.table === table && p.sinks.includes(name));
        return { table, paused: !!pause, since: pause?.since ?? null, heldEvents: pause?.heldEvents ?? 0 };
      }),
    };
  });

  return {
    service: from.serviceName,
    now: new Date().toISOString(),
    sources,
    log: {
      type: from.logType,
      partitions: from.log.partitions,
      endOffsets: ends,
      sizeBytes: from.logDir ? await directorySize(from.logDir) : null,
      diskFreeBytes: from.logDir ? await statfs(from.logDir).then((s) => s.bavail * s.bsize, () => null) : (diskFree.values[0]?.value ?? null),
      lastCompaction: from.events.lastCompaction,
    },
    sinks,
    resyncs: from.resyncs.list(),
  };
}

interface Health {
  state?: string;
  since?: string;
  lastError?: string | null;
}

function healthOf(status: Record<string, unknown>): Health | null {
  return status.health && typeof status.health === 'object' ? (status.health as Health) : null;
}

/** A component that is not up: reconnecting (with a last error), starting, or stopped. */
function downState(health: Health | null, problem: { message: string } | undefined): 'starting' | 'reconnecting' | 'stopped' {
  if (health?.state === 'reconnecting' || (!health && problem)) return 'reconnecting';
  if (health?.state === 'starting') return health.lastError ? 'reconnecting' : 'starting';
  return 'stopped';
}

/** Rows done of `total`, with an ETA from the rate since this progress was first seen. */
function progress(key: string, rows: number, total: number | null, done: boolean): Progress {
  const now = Date.now();
  const seen = firstSeen.get(key) ?? { rows, t: now };
  firstSeen.set(key, seen);
  if (done) return { rows, total: total ?? rows, percent: 100, etaSeconds: 0 };
  const rate = now > seen.t + 500 ? (rows - seen.rows) / ((now - seen.t) / 1000) : 0;
  const percent = total ? Math.min(99.9, Math.round((1000 * rows) / total) / 10) : null;
  const etaSeconds = total !== null && rate > 0 ? Math.round((total - rows) / rate) : null;
  return { rows, total, percent, etaSeconds };
}

export function parseCheckpoint(text: unknown): Checkpoint {
  if (typeof text !== 'string') return {};
  if (!text.startsWith('{')) return { position: text };
  try {
    return JSON.parse(text) as Checkpoint;
  } catch {
    return {};
  }
}

async function directorySize(dir: string): Promise<number | null> {
  let total = 0;
  const walk = async (path: string): Promise<void> => {
    for (const entry of await readdir(path, { withFileTypes: true }).catch(() => [])) {
      const full = join(path, entry.name);
      if (entry.isDirectory()) await walk(full);
      else total += await stat(full).then((s) => s.size, () => 0);
    }
  };
  await walk(dir);
  return total;
}
