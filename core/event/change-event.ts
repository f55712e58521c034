/**
 * The change event: a Debezium-compatible envelope (DESIGN §2).
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

/** Key values joined by `:` in key-column order (DESIGN §4). */
export function keyString(key: Row): string {
  return Object.values(key).map(stringifyKeyPart).join(':');
}

function stringifyKeyPart(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}
