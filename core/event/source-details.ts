import { ChangeEvent, Row } from './change-event';

/**
 * What a source knows about a change beyond the event itself, for outputs that
 * need it (the Debezium topics, core/log/debezium/): column types, the Postgres
 * last commit LSN, MySQL server id and thread, resync rows, primary-key moves.
 *
 * Kept under a symbol so it never reaches the native log or the sinks:
 * JSON.stringify skips symbol keys, while object spread and Object.assign
 * (how events are copied on their way to the log) keep them.
 */
export const SOURCE_DETAILS: unique symbol = Symbol.for('tidewater.sourceDetails');

export interface SourceDetails {
  /**
   * Each column's type as the source names it, shared by the events of one
   * table shape. Postgres: pgColumnType() forms (`int8`, `numeric(10,2)`,
   * `numeric`, `timestamp(3)`, `timestamptz`, `bytea`, `jsonb`, ...); MySQL and
   * MariaDB: information_schema COLUMN_TYPE (`bigint(20) unsigned`, `datetime(3)`).
   */
  columnTypes?: Readonly<Record<string, string>>;
  /** JSON columns' text as the source sent it (the event holds them parsed), per image. */
  jsonText?: { before?: Record<string, string>; after?: Record<string, string> };
  /** A row read by a resync (Debezium's incremental snapshot), not by the initial snapshot. */
  resync?: true;
  /** Postgres: the end LSN of the last commit before this change's transaction (Debezium's source.sequence[0]). */
  lastCommitLsn?: string;
  /** MySQL/MariaDB: the server id of the binlog event header (the originating server). */
  serverId?: number;
  /** MySQL: the thread (connection) id that ran the transaction. */
  thread?: number;
  /** MySQL/MariaDB: where the change's rows event starts in the binlog file, and the row's index within that event. */
  binlogEvent?: { pos: number; row: number };
  /** The MySQL-protocol source is a MariaDB server (its rows may carry no GTID to tell, e.g. snapshot rows). */
  mariadb?: true;
  /** The delete half of a primary-key change: the key the row moved to. */
  newKey?: Row;
  /** The create half of a primary-key change: the key the row moved from. */
  oldKey?: Row;
}

type WithDetails = ChangeEvent & { [SOURCE_DETAILS]?: SourceDetails };

export function sourceDetails(event: ChangeEvent): SourceDetails | undefined {
  return (event as WithDetails)[SOURCE_DETAILS];
}

/** Adds `details` to the event's own (merging with what it has); returns the event. */
export function addSourceDetails<E extends ChangeEvent>(event: E, details: SourceDetails): E {
  const target = event as WithDetails;
  target[SOURCE_DETAILS] = { ...target[SOURCE_DETAILS], ...details };
  return event;
}
