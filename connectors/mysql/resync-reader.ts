import { Connection, RowDataPacket } from 'mysql2/promise';
import { addSourceDetails } from '../../core/event/source-details';
import { mysqlColumnTypesOf, mysqlJsonText } from './column-types';
import { ChangeEvent, Row } from '../../core/event/change-event';
import { MysqlConnectionOptions } from './binlog-decoder';
import { MysqlCatalog } from './catalog';
import { ResyncTask, restoreKey, saveKey, SavedKeyValue } from './checkpoint';
import { destroyConnection, openConnection, quoteIdent, quoteTable, splitTable } from './connection';
import { chunkParameters, chunkQuery } from './snapshot';
import { normalizeValue } from './types';
import { ChunkSizer } from '../shared/chunk-sizer';
import { ResyncRequestError } from '../shared/resync-loop';
import { compileWhere, RenderedWhere, WhereFilterError } from '../shared/where-filter';

/** The task's own request is wrong (bad WHERE, table gone, no SELECT grant): retrying cannot fix it. */
export class ResyncTaskError extends ResyncRequestError {}

/** SQLSTATE classes of a statement that is wrong in itself: syntax or access (42), data (22), cardinality (21). */
const REQUEST_ERROR = /^(42|22|21)/;

export interface Chunk {
  /** 'r' events, their version and position still empty (the high watermark gives them). */
  rows: ChangeEvent[];
  lastKey?: SavedKeyValue[];
  /** Fewer rows than asked: the table is read to its end. */
  complete: boolean;
}

/**
 * Reads resync chunks on a connection of its own: each SELECT runs in a fresh
 * READ ONLY transaction, a plain consistent read that takes no row or table
 * lock and can change nothing. The WHERE is never the operator's text: it is
 * parsed, checked and rendered by where-filter.ts. The watermarks are written
 * on the same connection, outside those transactions.
 */
export class ChunkReader {
  private connection: Connection | null = null;
  private database: string | null = null;
  /** Per table: chunks of big rows get fewer of them (as the snapshot's do), `chunkSize` at most. */
  private readonly sizers = new Map<string, ChunkSizer>();

  constructor(private readonly options: { connection: MysqlConnectionOptions; catalog: MysqlCatalog; sourceName: string; chunkSize: number }) {}

  async connect(): Promise<Connection> {
    if (!this.connection) {
      this.connection = await openConnection(this.options.connection);
      this.connection.on('error', () => undefined); // a dropped connection fails the query in flight; the retry opens a new one
    }
    return this.connection;
  }

  /** Ends the connection at once (a query in flight fails). */
  close(): void {
    if (this.connection) destroyConnection(this.connection, 'the resync read stopped: its attempt ended');
    this.connection = null;
    this.database = null;
  }

  /**
   * The next chunk of `task` after its last key, in primary-key order: at most
   * `chunkSize` rows, fewer when the table's rows seen so far are big.
   */
  async read(task: ResyncTask, chunkSize?: number): Promise<Chunk> {
    const sizer = chunkSize === undefined ? this.sizerOf(task.table) : undefined;
    const limit = chunkSize ?? sizer!.next();
    const chunk = await this.readUpTo(task, limit);
    sizer?.observe(chunk.rows);
    return chunk;
  }

  private sizerOf(table: string): ChunkSizer {
    let sizer = this.sizers.get(table);
    if (!sizer) this.sizers.set(table, (sizer = new ChunkSizer(this.options.chunkSize)));
    return sizer;
  }

  private async readUpTo(task: ResyncTask, chunkSize: number): Promise<Chunk> {
    const { catalog, sourceName } = this.options;
    const key = catalog.primaryKey(task.table);
    const columns = await catalog.columns(task.table);
    if (!key?.length || columns.length === 0) throw new ResyncTaskError(`resync of ${task.table} failed: the table no longer exists or has no primary key`);
    const afterKey = task.afterKey ? restoreKey(task.afterKey) : undefined;
    const { schema, table } = splitTable(task.table);
    const connection = await this.connect();
    let rows: RowDataPacket[];
    try {
      if (this.database !== schema) {
        await connection.query(`USE ${quoteIdent(schema)}`);
        this.database = schema;
      }
      const filter = task.where !== undefined ? this.filterFor(task.table, columns, task.where) : undefined;
      const params = [...(afterKey ? chunkParameters(afterKey) : []), ...(filter?.params ?? [])];
      [rows] = await readOnly(connection, () => connection.query<RowDataPacket[]>(chunkQuery(task.table, columns, key, afterKey !== undefined, chunkSize, filter?.sql), params));
    } catch (error) {
      if (error instanceof ResyncTaskError) throw error;
      const message = `resync of ${task.table} failed reading a chunk${task.where ? ` (where: ${task.where})` : ''}: ${(error as Error).message}`;
      const sqlState = String((error as { sqlState?: unknown }).sqlState ?? '');
      throw REQUEST_ERROR.test(sqlState) ? new ResyncTaskError(message, { cause: error }) : new Error(message, { cause: error });
    }
    const now = Date.now();
    const events = rows.map((raw): ChangeEvent => {
      const after: Row = {};
      for (const column of columns) after[column.name] = normalizeValue(column, raw[column.name]);
      const source = { connector: 'mysql' as const, name: sourceName, db: schema, schema, table, position: '', version: '', snapshot: true, ts_ms: now };
      const event: ChangeEvent = { op: 'r', key: Object.fromEntries(key.map((c) => [c, after[c]])), before: null, after, source, ts_ms: now };
      // Debezium's incremental snapshot: the Debezium topics say snapshot "incremental" (never in the native log).
      const json = mysqlJsonText(columns, raw);
      return addSourceDetails(event, { columnTypes: mysqlColumnTypesOf(columns), resync: true, ...(json && { jsonText: { after: json } }) });
    });
    const last = rows[rows.length - 1];
    return { rows: events, lastKey: last ? saveKey(key.map((c) => last[c])) : undefined, complete: rows.length < chunkSize };
  }

  /** The task's WHERE as where-filter.ts renders it for this table; a refused one is the task's own fault. */
  private filterFor(table: string, columns: Array<{ name: string }>, where: string): RenderedWhere {
    try {
      return compileWhere(where, { dialect: 'mariadb', table, columns: columns.map((c) => c.name) }, () => '?');
    } catch (error) {
      if (error instanceof WhereFilterError) throw new ResyncTaskError(`source ${this.options.sourceName}: cannot resync ${table}: ${error.message}`, { cause: error });
      throw error;
    }
  }

  /** Checks and renders a condition for each table, then runs it once read-only (LIMIT 0 reads no row), as the chunk reads will. */
  async checkCondition(tables: string[], where: string): Promise<void> {
    const filters = new Map<string, RenderedWhere>();
    for (const table of tables) filters.set(table, this.filterFor(table, await this.options.catalog.columns(table), where));
    const connection = await openConnection(this.options.connection);
    connection.on('error', () => undefined);
    try {
      for (const table of tables) {
        const filter = filters.get(table)!;
        try {
          await readOnly(connection, () => connection.query(`SELECT 1 FROM ${quoteTable(table)} WHERE ${filter.sql} LIMIT 0`, filter.params));
        } catch (error) {
          throw new Error(`source ${this.options.sourceName}: cannot resync ${table} where ${where}: ${(error as Error).message}`, { cause: error });
        }
      }
    } finally {
      await connection.end().catch(() => undefined);
    }
  }
}

/** Runs `work` in a READ ONLY transaction, rolled back on failure. */
async function readOnly<T>(connection: Connection, work: () => Promise<T>): Promise<T> {
  await connection.query('START TRANSACTION READ ONLY');
  try {
    const result = await work();
    await connection.query('COMMIT');
    return result;
  } catch (error) {
    await connection.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** The server's estimate of a table's rows (information_schema), for the remaining-rows metric. */
export async function estimateRows(admin: Connection, name: string): Promise<number> {
  const { schema, table } = splitTable(name);
  const [rows] = await admin.query<RowDataPacket[]>('SELECT TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [schema, table]);
  return Number(rows[0]?.n ?? 0);
}
