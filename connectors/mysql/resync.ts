import { randomUUID } from 'node:crypto';
import { Connection } from 'mysql2/promise';
import { ChangeEvent, keyString, Row } from '../../core/event/change-event';
import { makeVersion } from '../../core/event/version';
import { untilAborted } from '../../core/runtime/attempt';
import { Logger } from '../../core/runtime/logger';
import { SourceProgress } from '../../core/contracts/source';
import { MysqlConnectionOptions } from './binlog-decoder';
import { MysqlCatalog } from './catalog';
import { ResyncTask } from './checkpoint';
import { splitTable } from './connection';
import { Chunk, ChunkReader, estimateRows } from './resync-reader';
import { WatermarkTransaction } from './transaction-assembler';
import { readWatermark, WatermarkTable } from './watermark-table';
import { joinableRequest } from '../shared/resync-join';

/** How often a chunk waiting for its high watermark says so. */
const WAIT_WARNING_MS = 60_000;

interface Window extends Chunk {
  id: string;
  task: ResyncTask;
  /** The stream has passed the low watermark: changes of the table from here on void their chunk rows. */
  open: boolean;
  changed: Set<string>;
  /** The table was truncated inside the window: the chunk is read again. */
  truncated: boolean;
  closed: () => void;
}

export interface ResyncOptions {
  connection: MysqlConnectionOptions;
  /** Control connection: catalog reads and request checks. */
  admin: Connection;
  sourceName: string;
  catalog: MysqlCatalog;
  watermarks: WatermarkTable;
  chunkSize: number;
  /** Queued tasks (from the saved checkpoint), the first one in progress. */
  tasks: ResyncTask[];
  report: SourceProgress;
  logger: Logger;
  /** Awaited before each chunk (SourceStreamOptions.paceResync). */
  pace?(signal: AbortSignal): Promise<void>;
}

/**
 * Lock-free resync of whole tables while the binlog streams, after Netflix's
 * DBLog: for each primary-key chunk, write a low watermark row, SELECT the
 * chunk (a plain consistent read: no row or table lock), write a high
 * watermark row. When the stream reaches the high watermark, chunk rows whose
 * key changed between the two watermarks are dropped (the binlog carries a
 * newer image); the rest join the high watermark's transaction with version
 * (its position, index 0): newer than every change before it, older than
 * every change after it.
 */
export class ResyncCoordinator {
  private window: Window | null = null;
  private readonly reader: ChunkReader;
  private wake: (() => void) | null = null;
  /** The tasks as the last batch handed to the runtime recorded them. */
  private handedOver: ResyncTask[];
  private readonly estimates = new Map<string, number>();

  constructor(private readonly options: ResyncOptions) {
    this.handedOver = copy(options.tasks);
    this.reader = new ChunkReader(options);
  }

  /**
   * The tasks for the checkpoint of a batch handed over now. The stream calls
   * it as it emits, so the progress recorded is that of chunks whose rows are
   * in this batch or an earlier one.
   */
  tasksForBatch(): ResyncTask[] {
    this.handedOver = copy(this.options.tasks);
    return this.handedOver;
  }

  /** The tasks for a checkpoint emitted beside the stream (a new request): the last handed-over progress. */
  tasksForRequest(): ResyncTask[] {
    return copy(this.handedOver);
  }

  /**
   * Checks and queues tables; returns the request id. The caller makes the new queue durable.
   * A request whose tables all wait, not started, in an earlier request with the same
   * condition joins it (resync-join.ts).
   */
  async request(tables: string[], where?: string): Promise<{ requestId: string; joined: boolean }> {
    const { catalog, sourceName, admin } = this.options;
    for (const table of tables) {
      if (!catalog.isCaptured(table) || !catalog.primaryKey(table)?.length) {
        const captured = catalog.tables.slice(0, 10).join(', ') + (catalog.tables.length > 10 ? ', ...' : '');
        throw new Error(`source ${sourceName}: cannot resync ${table}: it is not captured by this source or has no primary key (captured: ${captured})`);
      }
    }
    try {
      await this.options.watermarks.ensure(admin);
    } catch (error) {
      throw new Error(`source ${sourceName}: cannot resync: ${(error as Error).message}`, { cause: error });
    }
    if (where) await this.reader.checkCondition(tables, where);
    const waiting = joinableRequest(this.options.tasks, tables, where || undefined);
    if (waiting) return { requestId: waiting, joined: true };
    const requestId = randomUUID();
    const added = tables.map((table): ResyncTask => ({ requestId, table, ...(where ? { where } : {}), rows: 0 }));
    this.options.tasks.push(...added);
    this.handedOver.push(...copy(added));
    this.wake?.();
    return { requestId, joined: false };
  }

  /** Removes the task in progress (after an error that retrying cannot fix) and reports why. */
  dropCurrent(reason: string): ResyncTask | undefined {
    this.window?.closed();
    this.window = null;
    const task = this.options.tasks.shift();
    if (task) {
      this.handedOver = this.handedOver.filter((t) => !(t.requestId === task.requestId && t.table === task.table));
      this.options.report.resyncDropped?.({ requestId: task.requestId, table: task.table, where: task.where, error: reason });
    }
    return task;
  }

  /**
   * Removes every task of a request; the chunk in flight is discarded (its
   * high watermark is ignored). Returns the tables removed. The caller makes
   * the new queue durable (tasksForRequest no longer has them).
   */
  cancel(requestId: string): string[] {
    const removed = this.options.tasks.filter((t) => t.requestId === requestId);
    if (removed.length === 0) return [];
    this.options.tasks.splice(0, this.options.tasks.length, ...this.options.tasks.filter((t) => t.requestId !== requestId));
    this.handedOver = this.handedOver.filter((t) => t.requestId !== requestId);
    if (this.window?.task.requestId === requestId) {
      this.window.closed();
      this.window = null;
    }
    this.options.logger.info('resync cancelled', { requestId, tables: removed.map((t) => t.table) });
    return removed.map((t) => t.table);
  }

  /** Copies chunks of the queued tasks until the signal aborts; throws on the first failure. */
  async run(signal: AbortSignal): Promise<void> {
    const stop = () => {
      this.reader.close(); // a chunk query in flight ends now
      this.wake?.();
    };
    signal.addEventListener('abort', stop, { once: true });
    const aborted = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    try {
      while (!signal.aborted) {
        const task = this.options.tasks[0];
        if (!task) {
          await new Promise<void>((resolve) => (this.wake = resolve));
          this.wake = null;
          continue;
        }
        await this.options.pace?.(signal);
        if (signal.aborted || this.options.tasks[0] !== task) continue; // cancelled while it waited
        await this.copyChunk(task, signal, aborted);
      }
    } finally {
      signal.removeEventListener('abort', stop);
      this.window = null;
      this.reader.close();
    }
  }

  /** Row changes seen by the stream: a key changed inside the window is not copied. */
  onRowEvent(event: ChangeEvent): void {
    const window = this.window;
    if (!window?.open || `${event.source.schema}.${event.source.table}` !== window.task.table) return;
    if (event.op === 't') window.truncated = true;
    else window.changed.add(keyString(event.key));
  }

  /** A watermark row in the binlog; at this window's high watermark, returns the chunk rows to emit. */
  onWatermark(row: Row, tx: WatermarkTransaction): ChangeEvent[] | void {
    const mark = readWatermark(row, this.options.sourceName);
    const window = this.window;
    if (!mark || !window || mark.windowId !== window.id) return; // a check, another source's, or from before a restart
    if (mark.kind === 'low') {
      window.open = true;
      return;
    }
    if (mark.kind !== 'high') return;
    this.window = null;
    window.closed();
    const { task } = window;
    if (window.truncated || !window.open) {
      this.options.logger.info('resync chunk read again: the table was truncated while it was read', { table: task.table });
      return;
    }
    const version = makeVersion(tx.commitPosition, 0);
    const kept = window.rows.filter((r) => !window.changed.has(keyString(r.key)));
    for (const r of kept) Object.assign(r.source, { version, position: tx.position });
    // Progress moves with the rows: the checkpoint of the batch holding them records it.
    task.rows += window.rows.length;
    task.afterKey = window.lastKey ?? task.afterKey;
    const estimate = this.estimates.get(task.requestId + task.table) ?? 0;
    this.options.report.snapshotRows(task.table, window.rows.length, window.complete ? 0 : Math.max(0, estimate - task.rows));
    if (window.complete && this.options.tasks.includes(task)) {
      this.options.tasks.splice(this.options.tasks.indexOf(task), 1);
      this.options.logger.info('resync of table done', { table: task.table, rows: task.rows, requestId: task.requestId });
    }
    return kept;
  }

  /**
   * One chunk: low watermark, read, high watermark, then the wait for the
   * stream to reach it. Every await ends with the attempt: the reader's
   * connection is destroyed on abort (run's stop), and each step is raced
   * with the signal, so one opened or answered too late is closed, not waited for.
   */
  private async copyChunk(task: ResyncTask, signal: AbortSignal, aborted: Promise<void>): Promise<void> {
    const closeLate = () => this.reader.close();
    const connection = await untilAborted(this.reader.connect(), signal, closeLate);
    if (!this.estimates.has(task.requestId + task.table)) await untilAborted(this.start(task), signal);
    let closed!: () => void;
    const done = new Promise<void>((resolve) => (closed = resolve));
    const window: Window = { id: randomUUID(), task, rows: [], complete: false, open: false, changed: new Set(), truncated: false, closed };
    this.window = window;
    try {
      await untilAborted(this.options.watermarks.mark(connection, window.id, 'low'), signal);
      Object.assign(window, await untilAborted(this.reader.read(task), signal, closeLate));
      if (this.window !== window) return; // cancelled while it was read
      await untilAborted(this.options.watermarks.mark(connection, window.id, 'high'), signal);
    } catch (error) {
      if (this.window === window) this.window = null;
      throw error;
    }
    const startedAt = Date.now();
    const warn = setInterval(() => {
      const { schema } = splitTable(this.options.watermarks.table);
      this.options.logger.warn(
        `resync of ${task.table}: waited ${Math.round((Date.now() - startedAt) / 1000)} s for the binlog stream to reach the chunk's high watermark ` +
          `(is the stream far behind, or does a binlog filter such as binlog_ignore_db skip database ${schema}?)`,
      );
    }, WAIT_WARNING_MS);
    try {
      await Promise.race([done, aborted]);
    } finally {
      clearInterval(warn);
    }
  }

  private async start(task: ResyncTask): Promise<void> {
    const estimate = task.where ? 0 : await estimateRows(this.options.admin, task.table);
    this.estimates.set(task.requestId + task.table, estimate);
    const what = task.rows > 0 ? 'resync of table resumed' : 'resync of table started';
    this.options.logger.info(what, { table: task.table, requestId: task.requestId, where: task.where, rowsDone: task.rows, estimatedRows: estimate });
  }
}

function copy(tasks: ResyncTask[]): ResyncTask[] {
  return tasks.map((t) => ({ ...t, ...(t.afterKey ? { afterKey: [...t.afterKey] } : {}) }));
}
