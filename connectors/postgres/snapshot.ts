import { Client } from 'pg';
import { ChunkSizer } from '../shared/chunk-sizer';
import { ChangeEvent } from '../../core/event/change-event';
import { makeVersion } from '../../core/event/version';
import { markSnapshotChunk } from '../../core/event/source-details';
import { Logger } from '../../core/runtime/logger';
import { SourceBatch, SourceProgress } from '../../core/contracts/source';
import { serializeCheckpoint, SnapshotProgress, TableSnapshotProgress } from './checkpoint';
import { formatLsn } from './lsn';
import { ChunkPipeline } from './snapshot-pipeline';
import { describeColumns } from './snapshot-chunks';
import { snapshotRowEvents } from './snapshot-rows';
import { rawTextClient } from './pg-session';
import { CapturedTable, quoteTable, tableName } from './slot';
import { TypeCatalog } from './type-catalog';

export interface SnapshotOptions {
  url: string;
  sourceName: string;
  db: string;
  tables: CapturedTable[];
  /** Primary-key columns per table; a table without one is read in ctid order. */
  primaryKeys: Map<string, string[]>;
  catalog: TypeCatalog;
  /** The snapshot exported with the slot; absent when resuming after a crash (see below). */
  snapshotName?: string;
  /** Called once every reader has imported the exported snapshot. */
  onImported(): Promise<void>;
  progress: SnapshotProgress;
  chunkSize: number;
  parallelism: number;
  emit(batch: SourceBatch): Promise<void>;
  report: SourceProgress;
  signal: AbortSignal;
  logger: Logger;
  /** Build the events' SOURCE_DETAILS (SourceStreamOptions.sourceDetails: only Debezium topics read them); default true. */
  sourceDetails?: boolean;
}

/**
 * Reads every captured table in primary-key chunks and emits the rows as 'r'
 * events carrying the snapshot's position as version. Each batch's checkpoint
 * records the progress, so a crash resumes at the next chunk.
 *
 * Resuming reads the remaining chunks in a fresh snapshot, later than the
 * slot's consistent point. That is safe: streaming starts at the consistent
 * point, so every change after it arrives with a higher version and wins.
 */
export async function runSnapshot(options: SnapshotOptions): Promise<void> {
  const pending = options.tables.filter((t) => !options.progress.tables[tableName(t)]?.done);
  // Every reader imports the snapshot now: once the queue of tables runs dry, an idle one reads chunks of a table still going.
  const opened = await Promise.allSettled(Array.from({ length: Math.max(1, pending.length === 0 ? 1 : options.parallelism) }, () => openReader(options)));
  const readers = opened.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = opened.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(readers.map((r) => r.end().catch(() => undefined)));
    throw failed.reason;
  }
  // The attempt ended (another connection failed, or the service stops): a query in flight must not hold it up.
  const endReaders = () => readers.forEach((r) => void r.end().catch(() => undefined));
  options.signal.addEventListener('abort', endReaders, { once: true });
  try {
    await options.onImported();
    const queue = [...pending];
    const idle: Client[] = [];
    await Promise.all(
      readers.map(async (reader) => {
        for (let table = queue.shift(); table && !options.signal.aborted; table = queue.shift()) await readTable(reader, idle, table, options);
        idle.push(reader);
      }),
    );
  } finally {
    options.signal.removeEventListener('abort', endReaders);
    await Promise.all(readers.map((r) => r.end().catch(() => undefined)));
  }
}

async function openReader(options: SnapshotOptions): Promise<Client> {
  const client = rawTextClient(options.url);
  try {
    await client.connect();
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    if (options.snapshotName) await client.query(`SET TRANSACTION SNAPSHOT '${options.snapshotName.replace(/'/g, "''")}'`);
    return client;
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
}

async function readTable(client: Client, idle: Client[], table: CapturedTable, options: SnapshotOptions): Promise<void> {
  const name = tableName(table);
  const key = options.primaryKeys.get(name);
  const state: TableSnapshotProgress = options.progress.tables[name] ?? { done: false, rows: 0 };
  const estimate = await estimateRows(client, table);
  const startedAt = Date.now();
  let lastLog = startedAt;
  const rowsAtStart = state.rows;
  options.logger.info(state.rows > 0 ? 'resuming table snapshot' : 'snapshotting table', { table: name, rowsDone: state.rows, estimatedRows: estimate });

  const fields = await describeColumns(client, table, key);
  await options.catalog.load(fields.map((f) => f.dataTypeID));
  const chunks = new ChunkPipeline({ lead: client, idle, table, key, fields, after: state.afterKey, sizer: new ChunkSizer(options.chunkSize) });
  const details = options.sourceDetails !== false;
  const toEvent = snapshotRowEvents(fields, table, key, { sourceName: options.sourceName, db: options.db, catalog: options.catalog, position: options.progress.position, details });
  try {
    while (!state.done && !options.signal.aborted) {
      const { rows, range } = await chunks.next();
      const now = Date.now();
      const events = rows.map((values) => toEvent(values, now));
      chunks.observe(events);
      // A re-snapshot must remove rows deleted meanwhile: a truncate just below the snapshot's version goes first (docs/architecture.md §2).
      if (state.afterKey === undefined) events.unshift(truncateBelow(table, options));
      const last = rows[rows.length - 1];
      const next: TableSnapshotProgress = {
        // A chunk ending at a known key is never the last: the one after it finds out.
        done: !range.upto && rows.length < (range.limit ?? Infinity),
        rows: state.rows + rows.length,
        afterKey: range.upto ?? (last ? chunks.keyOf(last) : state.afterKey),
      };
      // Debezium's snapshot marks: decided in this synchronous step, so of parallel readers only the one that finishes last marks "last".
      const snapshotFirst = Object.values(options.progress.tables).every((t) => t.rows === 0);
      // Progress changes and the batch is queued in one synchronous step, so a
      // checkpoint never covers rows of a chunk that is not queued before it.
      Object.assign(state, next);
      options.progress.tables[name] = state;
      if (details) markSnapshotChunk(events, {
        tableFirst: next.rows === rows.length,
        tableLast: next.done,
        snapshotFirst,
        snapshotLast: next.done && options.tables.every((t) => options.progress.tables[tableName(t)]?.done),
      });
      const checkpoint = serializeCheckpoint({ position: options.progress.position, snapshot: options.progress });
      const emitted = options.emit({ events, checkpoint, commitTimeMs: Date.now() });
      options.report.snapshotRows(name, rows.length, Math.max(0, estimate - state.rows));
      await emitted;
      if (Date.now() - lastLog > 5000 || state.done) {
        lastLog = Date.now();
        const seconds = (Date.now() - startedAt) / 1000;
        options.logger.info(state.done ? 'table snapshot done' : 'table snapshot progress', {
          table: name,
          rows: state.rows,
          estimatedRows: estimate,
          percent: estimate > 0 ? Math.min(100, Math.round((100 * state.rows) / estimate)) : undefined,
          rowsPerSecond: Math.round((state.rows - rowsAtStart) / Math.max(seconds, 0.001)),
        });
      }
    }
    if (state.done) options.report.snapshotRows(name, 0, 0);
  } finally {
    // Borrowed readers go back for other tables; chunks read ahead are dropped (a resume reads them again).
    await chunks.close();
  }
}

/** Just below the snapshot rows' version and above every change committed before the snapshot. */
function truncateBelow(table: CapturedTable, options: SnapshotOptions): ChangeEvent {
  const now = Date.now();
  const { position } = options.progress;
  return {
    op: 't',
    key: {},
    before: null,
    after: null,
    source: {
      connector: 'postgresql', name: options.sourceName, db: options.db, schema: table.schema, table: table.table,
      position: formatLsn(position), version: makeVersion(position - 1n, 0xffffffff), snapshot: true, ts_ms: now,
    },
    ts_ms: now,
  };
}

async function estimateRows(client: Client, table: CapturedTable): Promise<number> {
  const { rows } = await client.query<{ estimate: string }>(
    `SELECT GREATEST(c.reltuples, 0)::bigint::text AS estimate FROM pg_class c WHERE c.oid = $1::regclass`,
    [quoteTable(table)],
  );
  return Number(rows[0]?.estimate ?? 0);
}
