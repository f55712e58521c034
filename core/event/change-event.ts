/**
 * The change event: a Debezium-compatible envelope (docs/architecture.md §2).
 * Values are lossless: 64-bit integers and NUMERIC as strings, timestamps as
 * ISO-8601 strings with microseconds, bytea as base64, JSON as parsed JSON.
 */
export type Op = 'c' | 'u' | 'd' | 'r' | 't';

export type Row = Record<string, unknown>;

export interface EventSource {
  connector: 'postgresql' | 'mysql';
  /** The configured source name. */
  name: string;
  db: string;
  schema: string;
  table: string;
  /** Serialized source position of this change (Postgres: LSN of the record). */
  position: string;
  /** Sortable version: orders changes of one row by commit (see version.ts). */
  version: string;
  txId?: string;
  snapshot?: boolean | 'last';
  /** Commit time of the transaction, ms since epoch. */
  ts_ms: number;
}

export interface ChangeEvent {
  op: Op;
  /** Primary-key columns. Empty for a truncate. */
  key: Row;
  before: Row | null;
  after: Row | null;
  source: EventSource;
  /**
   * Columns whose value the source did not send (Postgres unchanged TOAST):
   * sinks keep the previous value of these columns.
   */
  unchanged?: string[];
  /** When the service processed the event, ms since epoch. */
  ts_ms: number;
}

/** `schema.table` of an event, the name used in config include lists. */
export function qualifiedTable(event: ChangeEvent): string {
  return `${event.source.schema}.${event.source.table}`;
}

/**
 * One row's key as text (docs/architecture.md §4): the Redis key suffix, the Elasticsearch
 * `_id`, the warehouse's per-batch identity, `cdc verify`'s key.
 * A single-column key is its value as is (`42`, `a:b`). A composite key joins
 * its parts with `:` after escaping `\` as `\\` and `:` as `\:` inside each part,
 * so ('a:b','c') → `a\:b:c` and ('a','b:c') → `a:b\:c` stay two keys, and
 * decodeKey() gives the parts back. Parts without `:` or `\` look as before.
 */
export function keyString(key: Row): string {
  // The common single-column key without the arrays of Object.values().map() (this runs for every event, often twice).
  let only: string | undefined;
  let count = 0;
  for (const column in key) {
    if (++count > 1) break;
    only = stringifyKeyPart(key[column]);
  }
  if (count === 1) return only!;
  const parts = Object.values(key).map(stringifyKeyPart);
  return parts.map((part) => part.replace(/\\/g, '\\\\').replace(/:/g, '\\:')).join(':');
}

/** The key parts of a keyString() of a key with `columns` columns. */
export function decodeKey(key: string, columns: number): string[] {
  if (columns <= 1) return [key];
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < key.length; i++) {
    const ch = key[i];
    if (ch === '\\' && i + 1 < key.length) current += key[++i];
    else if (ch === ':') {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  parts.push(current);
  if (parts.length !== columns) throw new Error(`key "${key}" has ${parts.length} parts, its table's primary key has ${columns} columns`);
  return parts;
}

function stringifyKeyPart(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}
