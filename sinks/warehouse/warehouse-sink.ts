import { isAbsolute, join, resolve } from 'node:path';
import { ChangeEvent } from '../../core/event/change-event';
import { LogRecord } from '../../core/log/change-log';
import { Logger } from '../../core/runtime/logger';
import { newestPerRow } from '../shared/collapse';
import { noStoredRow, unfillableUnchanged } from '../shared/unchanged-columns';
import { rowImages } from '../shared/column-types';
import { projectEvent } from '../shared/columns';
import { DeadLetterStore } from '../shared/dead-letters';
import { TableFilter, TableOptions } from '../shared/table-filter';
import { GenerationalSink } from '../../core/contracts/sink';
import { WarehouseSinkConfig, WarehouseTableOptions } from './config';
import { DuckDbEngine } from './duckdb';
import { quoteIdent, SqlEngine } from './engine';
import { badCastsSql, historySql, mergeSql, missingStoredRowsSql, replaceSql, truncateSql } from './merge-sql';
import { placeOf, WarehouseMeta } from './meta';
import { PostgresEngine } from './postgres';
import { commitSeq, StagedBatch, stageBatch } from './staging';
import { promoteGeneration } from './generations';
import { TableSchemas, TableShape } from './table-schema';
import { nextTransaction, placeOrder, WAREHOUSE_BATCH_RECORDS } from './transactions';

const STAGE = 'cdc_stage';
export interface WarehouseContext {
  logger: Logger;
  dataDir: string;
  /** Where relative paths in the config resolve (the config file's folder). */
  baseDir?: string;
}

/**
 * Warehouse tables (docs/architecture.md §4): per source table a current-state table
 * `<schema>__<table>` (+ _cdc_version, _cdc_deleted, _cdc_synced_at) and an
 * append-only history `<schema>__<table>__changes`. write() only buffers;
 * flush() stages the buffered batches, deduplicates them per key, MERGEs them
 * (newer versions only) and stores the log offsets, all in one transaction:
 * exactly once in effect (storedOffsets()).
 */
export class WarehouseSink implements GenerationalSink {
  readonly name: string;
  readonly batchRecords = WAREHOUSE_BATCH_RECORDS;
  private readonly filter: TableFilter;
  private readonly tableOptions: TableOptions<WarehouseTableOptions>;
  private readonly engine: SqlEngine;
  private readonly meta: WarehouseMeta;
  private readonly schemas: TableSchemas;
  private readonly buffer = new Map<string, LogRecord>();
  private readonly registered = new Set<string>();
  private chain: Promise<void> = Promise.resolve();
  /** write() calls so far, and how many of them are durable in the target. */
  private written = 0;
  private durable = 0;
  private requestedGeneration: number | null = null;
  private writing = 0;
  private live = 0;
  /** The connection failed; reopen before the next transaction. */
  private broken = false;
  /** open() calls so far: work started before the latest open() (a flush given up on) leaves the state alone. */
  private epoch = 0;

  constructor(private readonly config: WarehouseSinkConfig, private readonly context: WarehouseContext, private readonly deadLetters: DeadLetterStore) {
    this.name = config.name;
    this.filter = new TableFilter(config.tables, config.exclude);
    this.tableOptions = new TableOptions(config.tableOptions);
    this.engine = config.engine === 'postgres' ? new PostgresEngine(config.url!, config.schema) : new DuckDbEngine(this.duckDbPath(), { memoryLimit: config.memoryLimit, threads: config.threads });
    this.meta = new WarehouseMeta(this.engine, config.name);
    this.schemas = new TableSchemas(this.engine);
  }

  get generation(): number {
    return this.writing;
  }

  async open(): Promise<void> {
    // A restart after a hung flush: that transaction is abandoned with its connection, and its batches are replayed by the log.
    this.epoch++;
    this.chain = Promise.resolve();
    this.buffer.clear();
    this.durable = this.written;
    this.broken = false;
    this.schemas.forget();
    this.registered.clear();
    await this.engine.close(); // still open when close() waited on a hung flush
    await this.engine.open();
    await this.meta.create();
    this.live = await this.meta.liveGeneration();
    this.writing = this.requestedGeneration ?? this.live;
  }

  useGeneration(generation: number): void {
    this.requestedGeneration = generation;
  }

  async liveGeneration(): Promise<number> {
    if (this.live) return this.live;
    // Not open: look with a connection of our own.
    await this.engine.open();
    try {
      await this.meta.create();
      return await this.meta.liveGeneration();
    } finally {
      await this.engine.close();
    }
  }

  /** Queued behind the flushes (a rebalance asks while partitions still write): it reads committed offsets only. */
  async storedOffsets(): Promise<Map<number, number> | null> {
    const read = this.chain.then(() => this.meta.offsets(this.writing));
    this.chain = read.then(() => undefined, () => undefined);
    const byTopic = await read;
    if (byTopic.size === 0) return null;
    if (byTopic.size > 1) {
      // One topic per table: partition numbers repeat across topics, and the runner asks per partition only.
      // The log's committed offsets (never ahead of these) are the safe fallback: replays change nothing.
      this.context.logger.warn('offsets are stored for several topics; resuming from the log\'s committed offsets instead', { sink: this.name, topics: [...byTopic.keys()].join(',') });
      return null;
    }
    return [...byTopic.values()][0];
  }

  async write(batch: readonly LogRecord[]): Promise<void> {
    for (const record of batch) this.buffer.set(`${placeOf(record.topic, record.partition)}\u0000${record.offset}`, record);
    this.written++;
  }

  /**
   * Makes everything written before this call durable, in one transaction
   * with whatever else is buffered by then; concurrent calls queue behind each
   * other, and a call whose writes an earlier transaction already took
   * resolves as soon as that one commits. A transaction starts one event-loop
   * turn late, so the batches of partitions released together share it.
   */
  flush(): Promise<void> {
    const wanted = this.written;
    const start = async () => {
      if (this.durable >= wanted) return;
      await new Promise<void>((resolve) => setImmediate(resolve));
      await this.flushBuffered();
    };
    const run = this.chain.then(start, start);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** The DuckDB statement a hung flush waits for (null: none, or not DuckDB), for the runner's stall report. */
  pendingWork(olderThanMs: number): string | null {
    return this.engine instanceof DuckDbEngine ? this.engine.pendingLongerThan(olderThanMs) : null;
  }

  async close(): Promise<void> {
    const epoch = this.epoch;
    await this.chain;
    if (epoch === this.epoch) await this.engine.close(); // else reopened meanwhile (this close was given up on)
  }

  /** Renames this generation's tables to the reader-facing names and drops the old ones, in one transaction. */
  async promote(): Promise<void> {
    const run = this.chain.then(async () => {
      await this.inTransaction(() => promoteGeneration(this.engine, this.meta, this.live, this.writing));
      await this.engine.afterCommit?.();
    });
    this.chain = run.catch(() => undefined);
    await run;
    this.live = this.writing;
    this.schemas.forget();
    this.context.logger.info('warehouse generation promoted', { sink: this.name, generation: this.writing });
  }

  /**
   * Everything buffered, in transactions of at most MAX_TRANSACTION_RECORDS
   * and about MAX_TRANSACTION_BYTES (the staging copy and the MERGE's memory
   * grow with a transaction). The records go in (partition, offset) order, so
   * each transaction holds, per partition, the next run of offsets after the
   * previous one: the offsets it stores never pass a record not yet durable.
   */
  private async flushBuffered(): Promise<void> {
    const epoch = this.epoch;
    const covers = this.written;
    const entries = [...this.buffer].sort(([, a], [, b]) => placeOrder(a, b));
    const records = entries.map(([, record]) => record);
    this.buffer.clear();
    let done = 0;
    try {
      while (done < records.length) {
        const next = nextTransaction(records, done);
        const part = records.slice(done, done + next.length);
        await this.reopenIfBroken(); // before the engine is asked to make room on its connection
        const made = await this.engine.beforeTransaction?.(next.size);
        if (made) this.context.logger.info(`sink ${this.name}: ${made}`, { sink: this.name, partition: part[0].partition, offset: part[0].offset });
        await this.inTransaction(() => this.apply(part));
        done += part.length;
      }
      // After the whole flush: what a failed transaction raised (DuckDB's memory limit) holds for the transactions after it.
      await this.engine.afterCommit?.();
      if (epoch === this.epoch) this.durable = covers;
    } catch (error) {
      if (epoch !== this.epoch) throw error;
      // Keep the records not yet committed for the next flush (the runner retries it); a newer write of the same offset wins.
      for (const [id, record] of entries.slice(done)) if (!this.buffer.has(id)) this.buffer.set(id, record);
      throw error;
    }
  }

  private async apply(records: LogRecord[]): Promise<void> {
    const offsets = new Map<string, number>();
    const byTable = new Map<string, ChangeEvent[]>();
    for (const { topic, partition, offset, event } of records) {
      const place = placeOf(topic, partition);
      offsets.set(place, Math.max(offsets.get(place) ?? 0, offset + 1));
      const { schema, table } = event.source;
      if (!this.filter.includes(schema, table)) continue;
      const name = `${schema}.${table}`;
      const list = byTable.get(name);
      if (list) list.push(event);
      else byTable.set(name, [event]);
    }
    const letters: { event: ChangeEvent; reason: string }[] = [];
    // The offsets go with the last table's statements (one round trip fewer), or alone if it ran none.
    let offsetsSql = this.meta.saveOffsetsSql(this.writing, offsets);
    const tables = [...byTable.values()];
    for (const [i, events] of tables.entries()) {
      const applied = await this.applyTable(events, i === tables.length - 1 ? offsetsSql : '');
      letters.push(...applied.letters);
      if (applied.sentWith) offsetsSql = '';
    }
    if (offsetsSql) await this.engine.query(offsetsSql);
    if (letters.length > 0) {
      // Recorded before the commit: a crash may record a letter twice, never lose one.
      await this.deadLetters.add(letters, records);
      this.context.logger.warn('rows the warehouse cannot write as they are (see each reason) went to the dead-letter file', {
        sink: this.name, count: letters.length, file: this.deadLetters.file, first: letters[0].reason,
      });
    }
  }

  /** One table's share of the batch, `sendWith` (or '') sent after its statements: the events refused, and whether it was sent. */
  private async applyTable(events: ChangeEvent[], sendWith: string): Promise<{ letters: { event: ChangeEvent; reason: string }[]; sentWith: boolean }> {
    const { schema, table } = events[0].source;
    const options = this.tableOptions.for(schema, table);
    const reader = options.table ?? `${schema}__${table}`;
    const truncates = events.filter((e) => e.op === 't');
    const changes = events.filter((e) => e.op !== 't').map((e) => projectEvent(e, options));
    const names = this.physicalNames(reader);
    const exists = changes.length > 0 || (await this.engine.columns(names.name)) !== null;
    const shape = exists ? await this.schemas.ensure(names.name, names.changes, Object.keys(changes[0]?.key ?? {}), rowImages(changes), options.columnTypes ?? {}) : null;
    if (!this.registered.has(reader)) {
      await this.meta.addTable(this.writing, reader);
      this.registered.add(reader);
    }
    for (const truncate of truncates) {
      await this.meta.saveTruncate(this.writing, reader, truncate.source.version);
      // Every copy of the truncate (one per partition) runs: rows other partitions wrote before reaching theirs go too.
      if (shape) await this.engine.query(truncateSql(this.engine, shape, truncate.source.version));
    }
    if (!shape) return { letters: [], sentWith: false };
    // Rows that cannot be written whole stay out of the MERGE (their history rows stay: the change did happen).
    const unfillable: { event: ChangeEvent; reason: string }[] = [];
    const latest = newestPerRow(changes).filter((event) => {
      const reason = unfillableUnchanged(event);
      if (reason) unfillable.push({ event, reason });
      return !reason;
    });
    const staged = stageBatch([...changes, ...truncates], latest);
    await this.engine.stage(STAGE, staged.stageColumns, staged.rows);
    staged.rows.length = 0; // in DuckDB/Postgres now: the copy may go before the MERGE
    const letters = [...unfillable, ...(await this.refuseBadCasts(shape, staged, reader)), ...(await this.refuseMissingStoredRows(shape, staged))];
    const statements: string[] = [];
    if (changes.length > 0) {
      const truncated = this.meta.truncatedExpr(this.writing, reader);
      statements.push(...(this.engine.applyLatest === 'merge' ? [mergeSql(this.engine, shape, STAGE, staged, truncated)] : replaceSql(this.engine, shape, STAGE, staged, truncated)));
    }
    const history = [...changes, ...truncates];
    const minVersion = history.reduce((min, e) => (e.source.version < min ? e.source.version : min), history[0].source.version);
    statements.push(historySql(this.engine, shape, STAGE, commitSeq(minVersion)));
    if (sendWith) statements.push(sendWith);
    // One round trip: each await waits for a turn of the event loop, which the source and the other
    // sinks stretch to hundreds of ms while they catch up (a failed statement stops the ones after it).
    await this.engine.query(statements.join(';\n'));
    return { letters, sentWith: sendWith !== '' };
  }

  private async refuseBadCasts(shape: TableShape, staged: StagedBatch, reader: string): Promise<{ event: ChangeEvent; reason: string }[]> {
    const sql = badCastsSql(this.engine, shape, STAGE);
    if (!sql) return [];
    const bad = (await this.engine.query(sql)).map((row) => String(row.r));
    if (bad.length === 0) return [];
    // Out of the MERGE (their history rows stay: the change did happen).
    await this.engine.query(`UPDATE ${quoteIdent(STAGE)} SET latest = NULL WHERE r IN (${bad.map((r) => `'${r}'`).join(', ')})`);
    const declared = [...shape.columns].filter(([, c]) => c.inferred === null).map(([name, c]) => `${name} ${c.sqlType}`).join(', ');
    return bad.map((r) => ({
      event: staged.latestByRow.get(Number(r))!,
      reason: `a value does not cast to its declared column type in ${reader} (${declared}); fix the row or the sink's columnTypes, then resync the table`,
    }));
  }

  /** Updates with unchanged TOAST columns of rows the table does not hold: out of the MERGE, which would write NULL there. */
  private async refuseMissingStoredRows(shape: TableShape, staged: StagedBatch): Promise<{ event: ChangeEvent; reason: string }[]> {
    if (staged.unchangedColumns.size === 0) return [];
    const bad = (await this.engine.query(missingStoredRowsSql(this.engine, shape, STAGE))).map((row) => String(row.r));
    if (bad.length === 0) return [];
    await this.engine.query(`UPDATE ${quoteIdent(STAGE)} SET latest = NULL WHERE r IN (${bad.map((r) => `'${r}'`).join(', ')})`);
    return bad.map((r) => {
      const event = staged.latestByRow.get(Number(r))!;
      return { event, reason: noStoredRow(event) };
    });
  }

  private physicalNames(reader: string): { name: string; changes: string } {
    if (this.writing === this.live) return { name: reader, changes: `${reader}__changes` };
    return { name: `${reader}__g${this.writing}`, changes: `${reader}__changes__g${this.writing}` };
  }

  private async inTransaction(work: () => Promise<void>): Promise<void> {
    const epoch = this.epoch;
    await this.reopenIfBroken();
    try {
      await this.engine.begin();
      await work();
      await this.engine.commit();
    } catch (error) {
      if (epoch !== this.epoch) throw error; // given up on and reopened: the connection it used is gone already
      // What the rolled-back transaction created is gone: learn it again from the catalog.
      this.schemas.forget();
      this.registered.clear();
      try {
        await this.engine.rollback();
        const relieved = await this.engine.afterFailedTransaction?.(error);
        if (relieved) this.context.logger.warn(`sink ${this.name}: ${relieved}`, { sink: this.name });
      } catch {
        // The connection itself failed: the next transaction starts on a new one.
        await this.engine.close().catch(() => undefined);
        this.broken = true;
      }
      throw error;
    }
  }

  /** After a failure that closed the engine's connection, the next use opens a new one. */
  private async reopenIfBroken(): Promise<void> {
    if (!this.broken) return;
    await this.engine.open();
    this.broken = false;
  }

  private duckDbPath(): string {
    const path = this.config.path ?? join(this.context.dataDir, `${this.config.name}.duckdb`);
    return isAbsolute(path) ? path : resolve(this.context.baseDir ?? process.cwd(), path);
  }
}
