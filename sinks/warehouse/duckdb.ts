import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DuckDBConnection, DuckDBInstance, DuckDBValue } from '@duckdb/node-api';
import { ColumnType } from '../shared/column-types';
import { quoteIdent, quoteText, SqlEngine, SqlRow } from './engine';

/**
 * A database file can be open once per process: sinks on the same file share
 * the instance; the last one to close releases the file (and its lock).
 */
const instances = new Map<string, { instance: Promise<DuckDBInstance>; users: number }>();

/** @duckdb/node-api is an optional dependency (70 MB): loaded only when a DuckDB warehouse opens. */
async function loadDuckDb(): Promise<typeof import('@duckdb/node-api')> {
  try {
    return await import('@duckdb/node-api');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw error;
    throw new Error('the DuckDB warehouse needs the optional package @duckdb/node-api: run npm install @duckdb/node-api', { cause: error });
  }
}

async function acquire(path: string): Promise<DuckDBInstance> {
  let entry = instances.get(path);
  if (!entry) {
    entry = { instance: loadDuckDb().then((duckdb) => duckdb.DuckDBInstance.create(path)), users: 0 };
    instances.set(path, entry);
    entry.instance.catch(() => instances.delete(path));
  }
  entry.users++;
  return entry.instance;
}

async function release(path: string): Promise<void> {
  const entry = instances.get(path);
  if (!entry || --entry.users > 0) return;
  instances.delete(path);
  (await entry.instance).closeSync();
}

const TYPE_NAMES: Record<ColumnType, string> = { boolean: 'BOOLEAN', integer: 'BIGINT', double: 'DOUBLE', text: 'VARCHAR', json: 'JSON' };

/**
 * DuckDB, embedded: one database file, one connection per sink. Batches are
 * staged with the appender.
 */
export class DuckDbEngine implements SqlEngine {
  readonly historyJsonType = 'JSON';
  readonly keyedTables = false;
  readonly historyDedup = 'scan';
  readonly commitSeqType = 'UBIGINT';
  private connection: DuckDBConnection | null = null;

  constructor(private readonly path: string) {}

  table(name: string): string {
    return quoteIdent(name);
  }

  typeName(type: ColumnType): string {
    return TYPE_NAMES[type];
  }

  castFails(textExpr: string, sqlType: string): string {
    return `(${textExpr} IS NOT NULL AND TRY_CAST(${textExpr} AS ${sqlType}) IS NULL)`;
  }

  jsonRows(stage: string, where: string, imageExpr: string, fields: ReadonlyMap<string, string>) {
    const structure = JSON.stringify(Object.fromEntries(fields)).replace(/'/g, "''");
    return {
      from: `(SELECT *, json_transform(${imageExpr}, '${structure}') AS cdc_image FROM ${quoteIdent(stage)} AS s WHERE ${where}) AS s`,
      field: (column: string) => `struct_extract(s.cdc_image, ${quoteText(column)})`,
    };
  }

  emptyCopySql(from: string, to: string): string {
    return `CREATE TABLE ${this.table(to)} AS SELECT * FROM ${this.table(from)} LIMIT 0`;
  }

  listHas(listExpr: string, column: string): string {
    return `coalesce(json_contains(${listExpr}, ${quoteText(JSON.stringify(column))}), false)`;
  }

  async open(): Promise<void> {
    mkdirSync(dirname(this.path), { recursive: true });
    const instance = await acquire(this.path);
    try {
      this.connection = await instance.connect();
      // DuckDB checkpoints when its WAL reaches 16 MB, rewriting every row group
      // the MERGEs touched: at CDC rates that is most commits' cost. A larger
      // WAL between checkpoints costs only recovery time after a crash.
      await this.connection.run(`SET GLOBAL checkpoint_threshold = '256MB'`);
    } catch (error) {
      await release(this.path);
      throw error;
    }
  }

  async close(): Promise<void> {
    if (!this.connection) return;
    this.connection.closeSync();
    this.connection = null;
    await release(this.path);
  }

  async query(sql: string, params?: readonly unknown[]): Promise<SqlRow[]> {
    const reader = await this.requireOpen().runAndReadAll(sql, params as DuckDBValue[] | undefined);
    return reader.getRowObjectsJS() as SqlRow[];
  }

  async stage(name: string, columns: readonly string[], rows: readonly (readonly (string | null)[])[]): Promise<void> {
    const connection = this.requireOpen();
    await connection.run(`CREATE OR REPLACE TEMP TABLE ${quoteIdent(name)} (${columns.map((c) => `${quoteIdent(c)} VARCHAR`).join(', ')})`);
    const appender = await connection.createAppender(name, 'main', 'temp');
    try {
      for (const row of rows) {
        for (const value of row) {
          if (value === null) appender.appendNull();
          else appender.appendVarchar(value);
        }
        appender.endRow();
      }
      appender.flushSync();
    } finally {
      appender.closeSync();
    }
  }

  async columns(name: string): Promise<Map<string, string> | null> {
    const rows = await this.query(
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'main' AND table_catalog = current_database() AND table_name = $1 ORDER BY ordinal_position`,
      [name],
    );
    return rows.length ? new Map(rows.map((r) => [String(r.column_name), String(r.data_type)])) : null;
  }

  private requireOpen(): DuckDBConnection {
    if (!this.connection) throw new Error(`duckdb ${this.path}: used before open() or after close()`);
    return this.connection;
  }
}
