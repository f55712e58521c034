import { ColumnType } from '../shared/column-types';

/** A row as the engine returns it. */
export type SqlRow = Record<string, unknown>;

/**
 * What the warehouse sink needs from a SQL engine (DuckDB embedded, or
 * Postgres). Both speak MERGE, ON CONFLICT, transactional DDL and
 * information_schema; the differences are type names, how a batch is staged
 * and how a value's castability is checked.
 */
export interface SqlEngine {
  /** Quoted, schema-qualified name of a table. */
  table(name: string): string;
  /** The column type the engine uses for an inferred type. */
  typeName(type: ColumnType): string;
  /** The type of the history's before/after columns (kept verbatim). */
  readonly historyJsonType: string;
  /**
   * How the history stays unique per (key, version): a primary key with ON
   * CONFLICT DO NOTHING (Postgres: a B-tree on disk), or a scan of the recent
   * part of the history (DuckDB: its ART indexes live in memory, which an
   * append-only table that grows forever cannot afford; min/max zone maps make
   * a scan from the batch's lowest version cheap).
   */
  readonly historyDedup: 'primary-key' | 'scan';
  /** The type of the history's `_cdc_commit_seq`: the commit position as an unsigned 64-bit number. */
  readonly commitSeqType: string;
  /** Whether current-state tables get a primary key on the key columns (Postgres: the MERGE's join needs the index; DuckDB: a hash join does better). */
  readonly keyedTables: boolean;
  /** How the newest changes land in a current-state table: one MERGE (Postgres), or delete + insert (DuckDB, see replaceSql). */
  readonly applyLatest: 'merge' | 'replace';
  /** Appended to a current-state table's CREATE TABLE (Postgres: room in each page for updates). */
  readonly currentTableStorage: string;
  /** A boolean SQL expression: true when `textExpr` does not cast to `sqlType`. */
  castFails(textExpr: string, sqlType: string): string;
  /**
   * After a transaction failed and was rolled back: frees what the engine can
   * so the retry may succeed; returns what it did, for the log, or null.
   */
  afterFailedTransaction?(error: unknown): Promise<string | null>;
  /** Before a transaction of changes this big: makes room for them if the engine must; returns what it did, for the log, or null. */
  beforeTransaction?(size: TransactionSize): Promise<string | null>;
  /** After a flush's transactions all committed (an engine may undo what afterFailedTransaction did). */
  afterCommit?(): Promise<void>;

  /**
   * A FROM clause over the staging table (alias `s`, its rows filtered by
   * `where`) that also parses each row's JSON image once into typed fields:
   * `fields` maps column → the type to read it as; field(column) is the SQL
   * expression of that column's value.
   */
  jsonRows(stage: string, where: string, imageExpr: string, fields: ReadonlyMap<string, string>): { from: string; field(column: string): string };
  /** SQL that creates table `to` empty, with the columns (and keys) of `from`. */
  emptyCopySql(from: string, to: string): string;
  /** A boolean SQL expression: the JSON array text `listExpr` holds the string `column`. */
  listHas(listExpr: string, column: string): string;

  open(): Promise<void>;
  close(): Promise<void>;
  /** Opens a transaction on the sink's connection (DuckDB: once no other connection to the file has one open). */
  begin(): Promise<void>;
  /** Commits it; when COMMIT fails the caller rolls back. */
  commit(): Promise<void>;
  rollback(): Promise<void>;
  /** Runs statements on the sink's one connection ($1, $2 ... placeholders). */
  query(sql: string, params?: readonly unknown[]): Promise<SqlRow[]>;
  /**
   * Creates (or replaces) a temporary table of text columns and loads the
   * rows into it, the fast way the engine offers (DuckDB: appender; Postgres:
   * COPY FROM STDIN).
   */
  stage(name: string, columns: readonly string[], rows: readonly (readonly (string | null)[])[]): Promise<void>;
  /** The columns of a table, name → type as the catalog spells it, or null when the table does not exist. */
  columns(name: string): Promise<Map<string, string> | null>;
}

/** Double quotes an identifier for either engine. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A text literal for either engine. */
export function quoteText(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** The changes of one warehouse transaction, in roughEventBytes. */
export interface TransactionSize {
  bytes: number;
  largestEventBytes: number;
}
