import { isAbsolute, join, resolve } from 'node:path';
import { HeldByAnotherProcessError, SinkReader } from '../../core/verify/sink-reader';
import { whereKeysSql } from '../../core/verify/where-keys';
import { keyString } from '../../core/event/change-event';
import { TableOptions } from '../shared/table-filter';
import { WarehouseSinkConfig, WarehouseTableOptions } from './config';
import { DuckDbEngine } from './duckdb';
import { quoteIdent, quoteText, SqlEngine, SqlRow } from './engine';
import { PostgresEngine } from './postgres';
import { BOOKKEEPING } from './table-schema';

const SCAN_BATCH = 5000;

/**
 * Reads a warehouse sink's current-state tables for `cdc verify`: the
 * reader-facing table `<schema>__<table>` (or its `table` option), which is
 * always the live generation's (a rebuild writes `…__g<n>` and renames it in
 * at the switch, generations.ts). Soft-deleted rows count as absent; values
 * come back as the sink took them from the JSON row (BIGINT → number, JSON →
 * parsed). Columns with a declared type (`columnTypes`) are left out of the
 * comparison: the warehouse renders them in its own format (see
 * declaredColumns()).
 *
 * DuckDB allows one process per database file: while the service runs, only
 * the service can read a DuckDB warehouse (`cdc verify` then asks it, and
 * continuous verification runs inside it).
 */
export class WarehouseSinkReader implements SinkReader {
  private readonly engine: SqlEngine;
  private readonly tableOptions: TableOptions<WarehouseTableOptions>;
  private opened: Promise<void> | null = null;
  private readonly shapes = new Map<string, Map<string, string> | null>();

  constructor(private readonly config: WarehouseSinkConfig, context: { dataDir: string; baseDir?: string }) {
    this.tableOptions = new TableOptions(config.tableOptions);
    this.engine = config.engine === 'postgres' ? new PostgresEngine(config.url!, config.schema) : new DuckDbEngine(duckDbPath(config, context));
  }

  async rows(schema: string, table: string, keyColumns: readonly string[], keys: readonly string[]): Promise<Array<Record<string, unknown> | null>> {
    const found = await this.select(schema, table, keyColumns, keys, '*');
    if (!found) return keys.map(() => null);
    const { rows, types } = found;
    const declared = new Set(Object.keys(this.options(schema, table).columnTypes ?? {}));
    const byKey = new Map<string, Record<string, unknown>>();
    for (const row of rows) {
      const out: Record<string, unknown> = {};
      for (const [column, value] of Object.entries(row)) {
        if (BOOKKEEPING.includes(column) || declared.has(column)) continue;
        out[column] = readerValue(value, types.get(column) ?? '');
      }
      byKey.set(rowKeyOf(keyColumns, row), out);
    }
    return keys.map((k) => byKey.get(k) ?? null);
  }

  async versions(schema: string, table: string, keyColumns: readonly string[], keys: readonly string[]): Promise<Array<string | null>> {
    const found = await this.select(schema, table, keyColumns, keys, [...keyColumns.map(quoteIdent), '_cdc_version'].join(', '));
    if (!found) return keys.map(() => null);
    const byKey = new Map(found.rows.map((row) => [rowKeyOf(keyColumns, row), String(row._cdc_version)]));
    return keys.map((k) => byKey.get(k) ?? null);
  }

  async scanKeys(schema: string, table: string, keyColumns: readonly string[], visit: (keys: string[]) => Promise<void>): Promise<void> {
    const name = await this.tableName(schema, table);
    if (!name) return;
    const columns = keyColumns.map(quoteIdent).join(', ');
    for (let offset = 0; ; offset += SCAN_BATCH) {
      const rows = await this.engine.query(`SELECT ${columns} FROM ${this.engine.table(name)} WHERE NOT _cdc_deleted ORDER BY ${columns} LIMIT ${SCAN_BATCH} OFFSET ${offset}`);
      if (rows.length > 0) await visit(rows.map((row) => rowKeyOf(keyColumns, row)));
      if (rows.length < SCAN_BATCH) return;
    }
  }

  /**
   * A soft delete (as the sink deletes) only while the row is still at the
   * version read before the source was checked: a newer change applied first
   * makes it match nothing; one applied later is newer than the kept
   * `_cdc_version` and the sink's MERGE writes it over the delete. No history
   * row is written: the source made no change.
   */
  async deleteKeys(schema: string, table: string, keyColumns: readonly string[], rows: ReadonlyArray<{ key: string; version: string }>): Promise<number> {
    const name = await this.tableName(schema, table);
    if (!name) return 0;
    let removed = 0;
    for (const { key, version } of rows) {
      const where = whereKeysSql(keyColumns, [key], quoteIdent, quoteText);
      const done = await this.engine.query(`UPDATE ${this.engine.table(name)} SET _cdc_deleted = true, _cdc_synced_at = current_timestamp
        WHERE ${where} AND _cdc_version = ${quoteText(version)} AND NOT _cdc_deleted RETURNING _cdc_version`);
      removed += done.length;
    }
    return removed;
  }

  async close(): Promise<void> {
    if (this.opened) await this.engine.close();
    this.opened = null;
  }

  private options(schema: string, table: string): WarehouseTableOptions {
    return this.tableOptions.for(schema, table);
  }

  /** The reader-facing table, or null when the sink has not created it. */
  private async tableName(schema: string, table: string): Promise<string | null> {
    await this.open();
    const name = this.options(schema, table).table ?? `${schema}__${table}`;
    // A table not created yet is looked up again next time (the sink may create it any moment).
    if (!this.shapes.get(name)) this.shapes.set(name, await this.engine.columns(name));
    return this.shapes.get(name) ? name : null;
  }

  private async select(schema: string, table: string, keyColumns: readonly string[], keys: readonly string[], what: string): Promise<{ rows: SqlRow[]; types: Map<string, string> } | null> {
    const name = keys.length > 0 ? await this.tableName(schema, table) : null;
    if (!name) return null;
    const rows = await this.engine.query(`SELECT ${what} FROM ${this.engine.table(name)} WHERE NOT _cdc_deleted AND ${whereKeysSql(keyColumns, keys, quoteIdent, quoteText)}`);
    return { rows, types: this.shapes.get(name)! };
  }

  private open(): Promise<void> {
    this.opened ??= this.engine.open().catch((error: Error) => {
      this.opened = null;
      if (/lock/i.test(error.message) && this.config.engine === 'duckdb') {
        throw new HeldByAnotherProcessError(`cannot read DuckDB warehouse ${this.config.name} from this process: ${error.message} (DuckDB allows one process per file; the running service verifies it: POST /api/verify)`, { cause: error });
      }
      throw error;
    });
    return this.opened;
  }
}

/** The DuckDB file of a warehouse sink (as WarehouseSink resolves it). */
export function duckDbPath(config: WarehouseSinkConfig, context: { dataDir: string; baseDir?: string }): string {
  const path = config.path ?? join(context.dataDir, `${config.name}.duckdb`);
  return isAbsolute(path) ? path : resolve(context.baseDir ?? process.cwd(), path);
}

/** Columns of a table with a type declared in `columnTypes`: verify leaves them out (the warehouse renders them in its own format). */
export function declaredColumns(config: WarehouseSinkConfig, schema: string, table: string): string[] {
  return Object.keys(new TableOptions(config.tableOptions).for(schema, table).columnTypes ?? {});
}

function rowKeyOf(keyColumns: readonly string[], row: SqlRow): string {
  return keyString(Object.fromEntries(keyColumns.map((c) => [c, plainValue(row[c])])));
}

/** A key value as the source's row holds it: BIGINT columns were written from JSON numbers. */
function plainValue(value: unknown): unknown {
  return typeof value === 'bigint' ? (Number.isSafeInteger(Number(value)) ? Number(value) : value.toString()) : value;
}

/** A stored value back as the JSON row held it: the inferred types (table-schema.ts) map one to one. */
function readerValue(value: unknown, sqlType: string): unknown {
  if (value === null || value === undefined) return null;
  const type = sqlType.toLowerCase();
  if (type === 'bigint') return typeof value === 'string' ? Number(value) : plainValue(value);
  if ((type === 'json' || type === 'jsonb') && typeof value === 'string') return JSON.parse(value);
  return value;
}
