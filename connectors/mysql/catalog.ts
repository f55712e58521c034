import { Connection, RowDataPacket } from 'mysql2/promise';
import { splitTable } from './connection';
import { ColumnShape, columnShape } from './types';

/**
 * What the source reads from information_schema: the captured tables (with
 * `db.*` patterns expanded), their primary keys and MariaDB's JSON columns.
 * Row events do not need it for their shape (the binlog describes every
 * table map itself); it fills the two gaps of the binlog metadata: MariaDB
 * logs JSON columns as LONGTEXT, and tables written before
 * binlog_row_metadata=FULL carry no key.
 */
export class MysqlCatalog {
  readonly tables: string[] = [];
  private readonly captured = new Set<string>();
  private readonly patterns: string[];
  private readonly keys = new Map<string, string[]>();
  private readonly json = new Map<string, Set<string>>();
  private readonly excluded: ReadonlySet<string>;

  /** `excluded`: tables never captured even when a `db.*` pattern covers them (the resync watermark table). */
  constructor(private readonly connection: Connection, patterns: string[], excluded: string[] = []) {
    this.patterns = patterns;
    this.excluded = new Set(excluded);
  }

  /** Expands patterns; each listed table must exist and have a primary key. */
  async load(sourceName: string): Promise<void> {
    for (const pattern of this.patterns) {
      const { schema, table } = splitTable(pattern);
      const [rows] = await this.connection.query<RowDataPacket[]>(
        `SELECT TABLE_NAME AS name FROM information_schema.TABLES
          WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ${table === '*' ? '' : 'AND TABLE_NAME = ?'} ORDER BY TABLE_NAME`,
        table === '*' ? [schema] : [schema, table],
      );
      if (rows.length === 0) {
        throw new Error(
          table === '*'
            ? `database ${schema} has no tables the user can see (check "tables" in the config: ${pattern}, and the user's SELECT grant)`
            : `table ${pattern} does not exist (check "tables" in the config, or create it first)`,
        );
      }
      for (const row of rows) if (!this.excluded.has(`${schema}.${row.name as string}`)) this.add(`${schema}.${row.name as string}`);
    }
    for (const name of this.tables) {
      await this.refresh(name);
      if (!this.keys.get(name)?.length) {
        throw new Error(`table ${name} has no primary key, so its updates and deletes cannot be told apart: add one (ALTER TABLE ${name} ADD PRIMARY KEY (...))`);
      }
    }
    if (this.tables.length === 0) throw new Error(`${sourceName}: no tables to capture`);
  }

  /** Whether `db.table` is captured: listed, or in a database captured with `db.*`. */
  isCaptured(name: string): boolean {
    if (this.captured.has(name)) return true;
    if (this.excluded.has(name)) return false;
    return this.patterns.includes(`${splitTable(name).schema}.*`);
  }

  primaryKey(name: string): string[] | undefined {
    return this.keys.get(name);
  }

  jsonColumns(name: string): ReadonlySet<string> {
    return this.json.get(name) ?? EMPTY;
  }

  /** Re-reads a table's key and JSON columns (after DDL); forgets a table that is gone. */
  async refresh(name: string): Promise<void> {
    const { schema, table } = splitTable(name);
    const [keyRows] = await this.connection.query<RowDataPacket[]>(
      `SELECT COLUMN_NAME AS name FROM information_schema.STATISTICS
        WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`,
      [schema, table],
    );
    this.keys.set(name, keyRows.map((r) => r.name as string));
    const [checks] = await this.connection.query<RowDataPacket[]>(
      `SELECT CHECK_CLAUSE AS clause FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`,
      [schema, table],
    ).catch(() => [[] as RowDataPacket[]]); // MySQL < 8.0.16 has no CHECK_CONSTRAINTS; its JSON type is in the binlog anyway
    const json = new Set<string>();
    for (const { clause } of checks) {
      const match = /^json_valid\(`((?:[^`]|``)+)`\)$/i.exec(String(clause).trim());
      if (match) json.add(match[1].replace(/``/g, '`'));
    }
    this.json.set(name, json);
    if (this.isCaptured(name)) this.add(name);
  }

  /** Columns of a table now, in definition order (for snapshot reads). */
  async columns(name: string): Promise<ColumnShape[]> {
    const { schema, table } = splitTable(name);
    const [rows] = await this.connection.query<RowDataPacket[]>(
      `SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type FROM information_schema.COLUMNS
        WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
      [schema, table],
    );
    const json = this.jsonColumns(name);
    return rows.map((r) => columnShape(r.name as string, String(r.type), json.has(r.name as string)));
  }

  private add(name: string): void {
    if (this.captured.has(name)) return;
    this.captured.add(name);
    this.tables.push(name);
  }
}

const EMPTY: ReadonlySet<string> = new Set();
