/**
 * What `cdc verify` needs from a sink: the documents it holds for given keys
 * of a table, and the keys it holds for a table (to find rows the source no
 * longer has). One implementation per sink type (sinks/<type>/reader.ts).
 */
export interface SinkReader {
  /** Per key string (keyString() of the key columns), the row the sink holds, or null when absent. */
  rows(schema: string, table: string, keys: readonly string[]): Promise<Array<Record<string, unknown> | null>>;
  /** Visits the key strings of the rows the sink holds for the table, in batches (bounded memory). */
  scanKeys(schema: string, table: string, visit: (keys: string[]) => Promise<void>): Promise<void>;
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
