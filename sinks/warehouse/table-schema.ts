import { Row } from '../../core/event/change-event';
import { ColumnType, inferColumns } from '../shared/column-types';
import { quoteIdent, SqlEngine } from './engine';

/** A data column: its SQL type, and the inferred type it stands for (null: declared in config, never widened). */
export interface Column {
  sqlType: string;
  inferred: ColumnType | null;
}

/** A current-state table and its history table, as they exist in the engine. */
export interface TableShape {
  name: string;
  changes: string;
  keyColumns: string[];
  /** Key and data columns, in table order; bookkeeping columns (_cdc_*) left out. */
  columns: Map<string, Column>;
}

export const BOOKKEEPING = ['_cdc_version', '_cdc_deleted', '_cdc_synced_at'];

/**
 * Version first: versions grow with the log, so a batch's entries land at the
 * index's right edge instead of at a random place per key (half the history
 * insert's cost on Postgres), and readers that load "changes since version V"
 * get an index. Tables created before keep (_cdc_key, _cdc_version): either
 * order keeps a change unique, which is what ON CONFLICT relies on.
 */
const HISTORY_PRIMARY_KEY = ', PRIMARY KEY (_cdc_version, _cdc_key)';

/** Reads the catalog's type names back as inferred types, so widening continues after a restart. */
function inferredFromCatalog(sqlType: string): ColumnType | null {
  const type = sqlType.toLowerCase();
  if (type === 'boolean') return 'boolean';
  if (type === 'bigint') return 'integer';
  if (type === 'double' || type === 'double precision') return 'double';
  if (type === 'varchar' || type === 'text' || type === 'character varying') return 'text';
  if (type === 'json' || type === 'jsonb') return 'json';
  return null;
}

/** JSON takes any value (as its JSON text) and text any scalar: what a column of `existing` type becomes for values of `seen`. */
function evolve(existing: ColumnType, seen: ColumnType): ColumnType {
  if (existing === seen || existing === 'json' || existing === 'text') return existing;
  if (existing === 'integer' && seen === 'double') return 'double';
  if (existing === 'double' && seen === 'integer') return 'double';
  return 'text';
}

/**
 * Creates each table on first use and evolves it: ADD COLUMN for a column it
 * has not seen, a wider type when a value does not fit (BIGINT → DOUBLE →
 * text). Runs inside the caller's transaction; forget() after a rollback.
 */
export class TableSchemas {
  private readonly known = new Map<string, TableShape>();

  constructor(private readonly engine: SqlEngine) {}

  forget(): void {
    this.known.clear();
  }

  async ensure(name: string, changes: string, keyColumns: string[], rows: readonly Row[], declared: Readonly<Record<string, string>>): Promise<TableShape> {
    const shape = this.known.get(name) ?? (await this.load(name, changes, keyColumns));
    if (keyColumns.length > 0) shape.keyColumns = keyColumns;
    const wanted = inferColumns(rows, new Map());
    if (shape.columns.size === 0) {
      await this.create(shape, keyColumns, wanted, declared);
    } else {
      for (const [column, seen] of wanted) {
        const existing = shape.columns.get(column);
        if (!existing) await this.addColumn(shape, column, declared[column] ? { sqlType: declared[column], inferred: null } : this.column(seen));
        else if (existing.inferred && evolve(existing.inferred, seen) !== existing.inferred) await this.alterType(shape, column, evolve(existing.inferred, seen));
      }
    }
    this.known.set(name, shape);
    return shape;
  }

  private column(type: ColumnType): Column {
    return { sqlType: this.engine.typeName(type), inferred: type };
  }

  private async load(name: string, changes: string, keyColumns: string[]): Promise<TableShape> {
    const catalog = await this.engine.columns(name);
    const columns = new Map<string, Column>();
    for (const [column, sqlType] of catalog ?? []) {
      if (!BOOKKEEPING.includes(column)) columns.set(column, { sqlType, inferred: inferredFromCatalog(sqlType) });
    }
    return { name, changes, keyColumns, columns };
  }

  private async create(shape: TableShape, keyColumns: string[], wanted: Map<string, ColumnType>, declared: Readonly<Record<string, string>>): Promise<void> {
    const ordered = [...keyColumns, ...[...wanted.keys()].filter((c) => !keyColumns.includes(c))];
    for (const column of ordered) {
      shape.columns.set(column, declared[column] ? { sqlType: declared[column], inferred: null } : this.column(wanted.get(column) ?? 'text'));
    }
    const definitions = [...shape.columns].map(([column, { sqlType }]) => `${quoteIdent(column)} ${sqlType}`);
    const { engine } = this;
    const primaryKey = engine.keyedTables && keyColumns.length ? `, PRIMARY KEY (${keyColumns.map(quoteIdent).join(', ')})` : '';
    await engine.query(`CREATE TABLE IF NOT EXISTS ${engine.table(shape.name)} (${definitions.join(', ')},
      _cdc_version VARCHAR NOT NULL, _cdc_deleted BOOLEAN NOT NULL, _cdc_synced_at TIMESTAMPTZ NOT NULL${primaryKey})${engine.currentTableStorage}`);
    await engine.query(`CREATE TABLE IF NOT EXISTS ${engine.table(shape.changes)} (
      _cdc_key VARCHAR NOT NULL, _cdc_version VARCHAR NOT NULL, _cdc_commit_seq ${engine.commitSeqType} NOT NULL, _cdc_op VARCHAR NOT NULL, _cdc_position VARCHAR,
      _cdc_commit_ts TIMESTAMPTZ, _cdc_tx VARCHAR, _cdc_before ${engine.historyJsonType}, _cdc_after ${engine.historyJsonType},
      _cdc_unchanged VARCHAR, _cdc_synced_at TIMESTAMPTZ NOT NULL${engine.historyDedup === 'primary-key' ? HISTORY_PRIMARY_KEY : ''})`);
  }

  private async addColumn(shape: TableShape, column: string, definition: Column): Promise<void> {
    await this.engine.query(`ALTER TABLE ${this.engine.table(shape.name)} ADD COLUMN ${quoteIdent(column)} ${definition.sqlType}`);
    shape.columns.set(column, definition);
  }

  private async alterType(shape: TableShape, column: string, type: ColumnType): Promise<void> {
    const sqlType = this.engine.typeName(type);
    const q = quoteIdent(column);
    await this.engine.query(`ALTER TABLE ${this.engine.table(shape.name)} ALTER COLUMN ${q} TYPE ${sqlType} USING CAST(${q} AS ${sqlType})`);
    shape.columns.set(column, { sqlType, inferred: type });
  }
}
