import { randomUUID } from 'node:crypto';
import { ChunkSizer } from '../shared/chunk-sizer';
import { Client } from 'pg';
import { Pgoutput } from 'pg-logical-replication';
import { ChangeEvent, keyString } from '../../core/event/change-event';
import { makeVersion } from '../../core/event/version';
import { addSourceDetails } from '../../core/event/source-details';
import { pgColumnTypesOf, pgJsonText } from './column-types';
import { Logger } from '../../core/runtime/logger';
import { isRequestSqlState, ResyncRequestError } from '../shared/resync-loop';
import { joinableRequest } from '../shared/resync-join';
import { compileWhere, RenderedWhere, WhereFilterError } from '../shared/where-filter';
import { SourceProgress } from '../../core/contracts/source';
import { ResyncTask } from './checkpoint';
import { formatLsn, Lsn } from './lsn';
import { endClient, rawTextClient } from './pg-session';
import { quoteIdent, quoteTable, splitTableName } from './slot';
import { TypeCatalog } from './type-catalog';

export const WATERMARK_PREFIX = 'tidewater_watermark';

interface Window {
  id: string;
  task: ResyncTask;
  rows: ChangeEvent[];
  lastKey?: string[];
  complete: boolean;
  open: boolean;
  changed: Set<string>;
  /** A truncate of the table inside the window: the chunk is read again. */
  truncated: boolean;
  closed: () => void;
}

export interface ResyncOptions {
  url: string;
  admin: Client;
  sourceName: string;
  db: string;
  primaryKeys: Map<string, string[]>;
  catalog: TypeCatalog;
  chunkSize: number;
  tasks: ResyncTask[];
  report: SourceProgress;
  logger: Logger;
  /** Awaited before each chunk (SourceStreamOptions.paceResync). */
  pace?(signal: AbortSignal): Promise<void>;
}

/**
 * Lock-free resync of whole tables while streaming goes on, after Netflix's
 * DBLog: for each primary-key chunk, write a low watermark into the WAL,
 * SELECT the chunk, write a high watermark. When the stream reaches the high
 * watermark, every chunk row whose key changed between the two watermarks is
 * dropped (the stream carries a newer image); the rest join the high
 * watermark's transaction with version (its commit LSN, index 0): newer than
 * every change committed before it, older than every change after it.
 */
export class ResyncCoordinator {
  private window: Window | null = null;
  /** The high watermark's outcome, applied once its transaction is handed to the log. */
  private staged: Window | null = null;
  private reader: Client | null = null;
  /** Rows per chunk by table, bounded by bytes (chunk-sizer.ts). */
  private readonly sizers = new Map<string, ChunkSizer>();
  private wake: (() => void) | null = null;
  /** Per request and table, the planner's row estimate (for progress and ETA; 0 with a WHERE: unknown). */
  private readonly estimates = new Map<string, number>();

  constructor(private readonly options: ResyncOptions) {}

  /**
   * The queued tasks, for the checkpoint. Progress of a chunk counts only once
   * the transaction carrying its rows is handed over (commitStaged), so a
   * checkpoint never covers rows that are not in the log before it.
   */
  tasks(): ResyncTask[] {
    return this.options.tasks.map((t) => ({ ...t }));
  }

  /**
   * Checks and queues tables; returns the request id. The caller makes the new
   * queue durable. A WHERE is parsed and checked against each table's columns
   * (where-filter.ts), then run once with LIMIT 0 in a read-only transaction,
   * so a condition the server refuses (types, operators) is refused here and
   * never blocks the queue. A request whose tables all wait, not started, in
   * an earlier request with the same condition joins it (resync-join.ts).
   */
  async request(tables: string[], where?: string): Promise<{ requestId: string; joined: boolean }> {
    for (const table of tables) {
      if (!this.options.primaryKeys.has(table)) {
        throw new Error(`source ${this.options.sourceName}: cannot resync ${table}: it is not captured by this source or has no primary key`);
      }
    }
    if (where !== undefined) await this.checkCondition(tables, where);
    const waiting = joinableRequest(this.options.tasks, tables, where);
    if (waiting) return { requestId: waiting, joined: true };
    const requestId = randomUUID();
    for (const table of tables) this.options.tasks.push({ requestId, table, ...(where !== undefined ? { where } : {}), rows: 0 });
    this.wake?.();
    return { requestId, joined: false };
  }

  /** Removes the task in progress (after an error that retrying cannot fix) and reports why. */
  dropCurrent(reason: string): ResyncTask | undefined {
    this.releaseWindows();
    const task = this.options.tasks.shift();
    if (task) this.options.report.resyncDropped?.({ requestId: task.requestId, table: task.table, where: task.where, error: reason });
    return task;
  }

  /**
   * Removes every task of a request; the chunk in flight is discarded (its
   * high watermark is ignored). Returns the tables removed. The caller makes
   * the new queue durable.
   */
  cancel(requestId: string): string[] {
    const removed = this.options.tasks.filter((t) => t.requestId === requestId);
    if (removed.length === 0) return [];
    this.options.tasks.splice(0, this.options.tasks.length, ...this.options.tasks.filter((t) => t.requestId !== requestId));
    if (this.window?.task.requestId === requestId || this.staged?.task.requestId === requestId) this.releaseWindows();
    this.options.logger.info('resync cancelled', { requestId, tables: removed.map((t) => t.table) });
    return removed.map((t) => t.table);
  }

  private releaseWindows(): void {
    for (const window of [this.window, this.staged]) window?.closed();
    this.window = null;
    this.staged = null;
  }

  async run(signal: AbortSignal): Promise<void> {
    const aborted = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    try {
      while (!signal.aborted) {
        const task = this.options.tasks[0];
        if (!task) {
          await Promise.race([new Promise<void>((resolve) => (this.wake = resolve)), aborted]);
          this.wake = null;
          continue;
        }
        await this.options.pace?.(signal);
        if (signal.aborted || this.options.tasks[0] !== task) continue; // cancelled while it waited
        await this.copyChunk(task, aborted);
      }
    } finally {
      await this.reader?.end().catch(() => undefined);
      this.reader = null;
    }
  }

  /** Row changes seen by the stream: a key changed inside the window is not copied. */
  onRowEvent(event: ChangeEvent): void {
    const window = this.window;
    if (!window?.open || `${event.source.schema}.${event.source.table}` !== window.task.table) return;
    if (event.op === 't') window.truncated = true;
    else window.changed.add(keyString(event.key));
  }

  /** The transaction with the high watermark is on its way to the log: its chunk's progress counts now. */
  commitStaged(): void {
    const window = this.staged;
    if (!window) return;
    this.staged = null;
    const { task } = window;
    // A task cancelled meanwhile is no longer queued: its progress no longer matters.
    if (!window.truncated && this.options.tasks.includes(task)) {
      task.rows += window.rows.length;
      task.afterKey = window.lastKey ?? task.afterKey;
      const estimate = this.estimates.get(task.requestId + task.table) ?? 0;
      this.options.report.snapshotRows(task.table, window.rows.length, window.complete ? 0 : Math.max(0, estimate - task.rows));
      if (window.complete) {
        this.options.tasks.splice(this.options.tasks.indexOf(task), 1);
        this.options.logger.info('resync of table done', { table: task.table, rows: task.rows, requestId: task.requestId });
      }
    }
    window.closed();
  }

  onLogicalMessage(message: Pgoutput.MessageMessage, commitLsn: Lsn): ChangeEvent[] | void {
    if (message.prefix !== WATERMARK_PREFIX) return;
    const { id, kind } = JSON.parse(Buffer.from(message.content).toString('utf8')) as { id: string; kind: 'low' | 'high' };
    const window = this.window;
    if (!window || window.id !== id) return; // from an attempt before a reconnect
    if (kind === 'low') {
      window.open = true;
      return;
    }
    this.window = null;
    this.staged = window;
    // Rows read before a truncate inside the window would outlive it: read the chunk again.
    if (window.truncated) return [];
    const version = makeVersion(commitLsn, 0);
    const kept = window.rows.filter((row) => !window.changed.has(keyString(row.key)));
    for (const row of kept) {
      row.source.version = version;
      row.source.position = formatLsn(commitLsn);
    }
    return kept;
  }

  private async copyChunk(task: ResyncTask, aborted: Promise<void>): Promise<void> {
    const id = randomUUID();
    let closed!: () => void;
    const done = new Promise<void>((resolve) => (closed = resolve));
    const window: Window = { id, task, rows: [], complete: false, open: false, changed: new Set(), truncated: false, closed };
    if (!this.estimates.has(task.requestId + task.table)) {
      const { rows } = await this.options.admin.query(`SELECT GREATEST(reltuples, 0)::bigint::text AS estimate FROM pg_class WHERE oid = $1::regclass`, [quoteTable(splitTableName(task.table))]).catch(() => ({ rows: [] as Array<{ estimate: string }> }));
      this.estimates.set(task.requestId + task.table, task.where ? 0 : Number(rows[0]?.estimate ?? 0));
    }
    this.window = window;
    await this.watermark(id, 'low');
    const { rows, lastKey, complete } = await this.readChunk(task);
    Object.assign(window, { rows, lastKey, complete });
    if (this.window !== window) return; // cancelled while it was read
    await this.watermark(id, 'high');
    await Promise.race([done, aborted]);
  }

  private async watermark(id: string, kind: 'low' | 'high'): Promise<void> {
    await this.options.admin.query(`SELECT pg_logical_emit_message(true, $1, $2)`, [WATERMARK_PREFIX, JSON.stringify({ id, kind })]);
  }

  /** Parses, checks and renders each table's condition, then runs it once with LIMIT 0, read-only. */
  private async checkCondition(tables: string[], where: string): Promise<void> {
    const client = rawTextClient(this.options.url);
    try {
      await client.connect();
      for (const table of tables) {
        const filter = await this.filterFor(client, table, where, 0);
        try {
          await readOnly(client, () => client.query(`SELECT 1 FROM ${quoteTable(splitTableName(table))} WHERE ${filter.sql} LIMIT 0`, filter.params));
        } catch (error) {
          throw new Error(`source ${this.options.sourceName}: cannot resync ${table} where ${where}: ${(error as Error).message}`, { cause: error });
        }
      }
    } finally {
      await endClient(client);
    }
  }

  /** The task's WHERE rendered by us (where-filter.ts), its parameters numbered from `firstParam` + 1. */
  private async filterFor(client: Client, table: string, where: string, firstParam: number): Promise<RenderedWhere> {
    const { rows } = await client.query(`SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, [quoteTable(splitTableName(table))]);
    const columns = rows.map((r: { attname: string }) => r.attname);
    try {
      return compileWhere(where, { dialect: 'postgresql', table, columns }, (i) => `$${firstParam + i + 1}`);
    } catch (error) {
      if (error instanceof WhereFilterError) throw new ResyncRequestError(`source ${this.options.sourceName}: cannot resync ${table}: ${error.message}`, { cause: error });
      throw error;
    }
  }

  private async readChunk(task: ResyncTask): Promise<{ rows: ChangeEvent[]; lastKey?: string[]; complete: boolean }> {
    if (!this.reader) {
      this.reader = rawTextClient(this.options.url);
      await this.reader.connect();
    }
    const reader = this.reader;
    const key = this.options.primaryKeys.get(task.table)!;
    const columns = key.map(quoteIdent).join(', ');
    const params: unknown[] = [...(task.afterKey ?? [])];
    const filter = task.where !== undefined ? await this.filterFor(reader, task.table, task.where, params.length) : undefined;
    if (filter) params.push(...filter.params);
    const sizer = this.sizers.get(task.table) ?? this.sizers.set(task.table, new ChunkSizer(this.options.chunkSize)).get(task.table)!;
    const limit = sizer.next();
    params.push(limit);
    const conditions = [task.afterKey ? `(${columns}) > (${key.map((_, i) => `$${i + 1}`).join(', ')})` : '', filter?.sql ?? ''].filter(Boolean);
    const sql = `SELECT * FROM ${quoteTable(splitTableName(task.table))} ${conditions.length ? `WHERE ${conditions.join(' AND ')}` : ''} ORDER BY ${columns} LIMIT $${params.length}`;
    let result;
    try {
      // Read-only: a second wall behind the filter, whatever reaches the server.
      result = await readOnly(reader, () => reader.query(sql, params));
    } catch (error) {
      const message = `resync of ${task.table} failed reading a chunk${task.where ? ` (where: ${task.where})` : ''}: ${(error as Error).message}`;
      throw isRequestSqlState((error as { code?: unknown }).code) ? new ResyncRequestError(message, { cause: error }) : new Error(message, { cause: error });
    }
    await this.options.catalog.load(result.fields.map((f) => f.dataTypeID));
    const { schema, table } = splitTableName(task.table);
    const now = Date.now();
    const rows: ChangeEvent[] = result.rows.map((raw: Record<string, string | null>) => {
      const after: Record<string, unknown> = {};
      for (const field of result.fields) after[field.name] = raw[field.name] === null ? null : this.options.catalog.decode(field.dataTypeID, raw[field.name]!);
      const event: ChangeEvent = {
        op: 'r',
        key: Object.fromEntries(key.map((c) => [c, after[c]])),
        before: null,
        after,
        source: { connector: 'postgresql', name: this.options.sourceName, db: this.options.db, schema, table, position: '', version: '', snapshot: true, ts_ms: now },
        ts_ms: now,
      };
      // Debezium's incremental snapshot: the Debezium topics say snapshot "incremental" (never in the native log).
      const json = pgJsonText(pgColumnTypesOf(result.fields), raw);
      return addSourceDetails(event, { columnTypes: pgColumnTypesOf(result.fields), resync: true, ...(json && { jsonText: { after: json } }) });
    });
    sizer.observe(rows);
    const last = result.rows[result.rows.length - 1] as Record<string, string> | undefined;
    return { rows, lastKey: last ? key.map((c) => last[c]) : undefined, complete: result.rows.length < limit };
  }
}

/** Runs `work` in a READ ONLY transaction on `client`, rolled back on failure. */
async function readOnly<T>(client: Client, work: () => Promise<T>): Promise<T> {
  await client.query('BEGIN TRANSACTION READ ONLY');
  try {
    const result = await work();
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
