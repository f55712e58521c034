/**
 * What `cdc verify` needs from a sink: the documents it holds for given keys
 * of a table, and the keys it holds for a table (to find rows the source no
 * longer has). One implementation per sink type (sinks/<type>/reader.ts).
 * `keyColumns` is the source's primary key (sinks that store rows as columns
 * find them by it; key-value sinks ignore it).
 */
export interface SinkReader {
  /** Per key string (keyString() of the key columns), the row the sink holds, or null when absent. */
  rows(schema: string, table: string, keyColumns: readonly string[], keys: readonly string[]): Promise<Array<Record<string, unknown> | null>>;
  /** Visits the key strings of the rows the sink holds for the table, in batches (bounded memory). */
  scanKeys(schema: string, table: string, keyColumns: readonly string[], visit: (keys: string[]) => Promise<void>): Promise<void>;
  /** Per key, the version stamp the sink holds for the row it holds (as the sink stores it), or null when it holds none. */
  versions(schema: string, table: string, keyColumns: readonly string[], keys: readonly string[]): Promise<Array<string | null>>;
  /**
   * Removes rows the source does not have (`cdc verify --repair`), each only
   * while the sink still holds it at the stamp given (read by versions()
   * BEFORE the source was found without it). Whatever the pipeline writes for
   * the key after that has a newer version and wins: the delete is refused
   * when the newer write came first, and the newer write is applied over the
   * delete when it comes later (the delete leaves the old version in place).
   * Returns how many rows were removed.
   */
  deleteKeys(schema: string, table: string, keyColumns: readonly string[], rows: ReadonlyArray<{ key: string; version: string }>): Promise<number>;
  close(): Promise<void>;
}

/** What `cdc verify` needs from a source: its captured tables and their rows in primary-key order, decoded as the source decodes them. */
export interface SourceRowReader {
  /** The captured tables as `schema.table`. */
  tables(): Promise<string[]>;
  primaryKey(table: string): Promise<string[]>;
  /** Up to `limit` rows after `afterKey` (raw key values of the last row read), in key order. */
  chunk(table: string, afterKey: unknown[] | null, limit: number): Promise<{ rows: Array<Record<string, unknown>>; lastKey: unknown[] | null }>;
  /** The rows of these keys (key strings) that exist, by key string. */
  rowsByKey(table: string, keys: readonly string[]): Promise<Map<string, Record<string, unknown>>>;
  /** An SQL condition selecting exactly these keys, for `cdc resync --where`. */
  whereKeys(table: string, keys: readonly string[]): Promise<string>;
  close(): Promise<void>;
}

/**
 * A sink as verification sees it, built by the composition root from the
 * sink's config: its reader, which tables it takes, and what it keeps of a
 * source row (its column projection).
 */
export interface VerifyTarget {
  reader: SinkReader;
  includes(schema: string, table: string): boolean;
  project(schema: string, table: string, row: Record<string, unknown>): Record<string, unknown>;
}

/** Thrown by a sink reader whose storage another process holds (a DuckDB file open in the running service). */
export class HeldByAnotherProcessError extends Error {
  readonly heldByAnotherProcess = true;
}

export function isHeldByAnotherProcess(error: unknown): boolean {
  return (error as { heldByAnotherProcess?: boolean } | null)?.heldByAnotherProcess === true;
}
