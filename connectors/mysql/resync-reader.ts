import { Connection, RowDataPacket } from 'mysql2/promise';
import { ChangeEvent, Row } from '../../core/event/change-event';
import { MysqlConnectionOptions } from './binlog-decoder';
import { MysqlCatalog } from './catalog';
import { ResyncTask, restoreKey, saveKey, SavedKeyValue } from './checkpoint';
import { openConnection, quoteIdent, quoteTable, splitTable } from './connection';
import { chunkParameters, chunkQuery } from './snapshot';
import { normalizeValue } from './types';

/** The task's own request is wrong (bad WHERE, table gone, no SELECT grant): retrying cannot fix it. */
export class ResyncTaskError extends Error {}

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
 * Reads resync chunks on a connection of its own, in autocommit mode: each
 * SELECT is a plain consistent read in a fresh view, which takes no row or
 * table lock. Its default database is the table's, so a WHERE may name
 * tables unqualified. The watermarks are written on the same connection.
 */
export class ChunkReader {
  private connection: Connection | null = null;
  private database: string | null = null;

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
    this.connection?.destroy();
    this.connection = null;
    this.database = null;
  }

  /** The next chunk of `task` (at most `chunkSize` rows), after its last key, in primary-key order. */
  async read(task: ResyncTask, chunkSize = this.options.chunkSize): Promise<Chunk> {
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
      [rows] = await connection.query<RowDataPacket[]>(chunkQuery(task.table, columns, key, afterKey !== undefined, chunkSize, task.where), afterKey ? chunkParameters(afterKey) : []);
    } catch (error) {
      const message = `resync of ${task.table} failed reading a chunk${task.where ? ` (where: ${task.where})` : ''}: ${(error as Error).message}`;
      const sqlState = String((error as { sqlState?: unknown }).sqlState ?? '');
      throw REQUEST_ERROR.test(sqlState) ? new ResyncTaskError(message, { cause: error }) : new Error(message, { cause: error });
    }
    const now = Date.now();
    const events = rows.map((raw): ChangeEvent => {
      const after: Row = {};
      for (const column of columns) after[column.name] = normalizeValue(column, raw[column.name]);
      const source = { connector: 'mysql' as const, name: sourceName, db: schema, schema, table, position: '', version: '', snapshot: true, ts_ms: now };
      return { op: 'r', key: Object.fromEntries(key.map((c) => [c, after[c]])), before: null, after, source, ts_ms: now };
    });
    const last = rows[rows.length - 1];
    return { rows: events, lastKey: last ? saveKey(key.map((c) => last[c])) : undefined, complete: rows.length < chunkSize };
  }

  /** Parses and resolves a condition against each table (LIMIT 0 reads no row), as the chunk reads will run it. */
  async checkCondition(tables: string[], where: string): Promise<void> {
    const connection = await openConnection(this.options.connection);
    try {
      for (const table of tables) {
        try {
          await connection.query(`USE ${quoteIdent(splitTable(table).schema)}`);
          await connection.query(`SELECT 1 FROM ${quoteTable(table)} WHERE (${where}\n) LIMIT 0`);
        } catch (error) {
          throw new Error(`source ${this.options.sourceName}: cannot resync ${table} where ${where}: ${(error as Error).message}`, { cause: error });
        }
      }
    } finally {
      await connection.end().catch(() => undefined);
    }
  }
}

/** The server's estimate of a table's rows (information_schema), for the remaining-rows metric. */
export async function estimateRows(admin: Connection, name: string): Promise<number> {
  const { schema, table } = splitTable(name);
  const [rows] = await admin.query<RowDataPacket[]>('SELECT TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [schema, table]);
  return Number(rows[0]?.n ?? 0);
}
