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
  /**
   * Where a snapshot row stands, as Debezium marks it (source.snapshot): the
   * first row of the snapshot, the first / last row of its table, the last row
   * of the snapshot. Other snapshot rows are plain "true".
   */
  snapshotMark?: SnapshotMark;
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
  /** The event's key is not a primary key (Postgres replica identity without one): Debezium writes a null message key. */
  noPrimaryKey?: true;
  /** The delete half of a primary-key change: the key the row moved to. */
  newKey?: Row;
  /** The create half of a primary-key change: the key the row moved from. */
  oldKey?: Row;
}

export type SnapshotMark = 'first' | 'first_in_data_collection' | 'last_in_data_collection' | 'last';

type WithDetails = ChangeEvent & { [SOURCE_DETAILS]?: SourceDetails };

/**
 * Marks the first and last row of a table's chunk as Debezium does
 * (RelationalSnapshotChangeEventSource: last, then first, then last in table,
 * then first in table). `table*` say whether the chunk opens/closes its table,
 * `snapshot*` whether it opens/closes the whole snapshot.
 */
export function markSnapshotChunk(rows: readonly ChangeEvent[], where: { tableFirst: boolean; tableLast: boolean; snapshotFirst: boolean; snapshotLast: boolean }): void {
  const chunkRows = rows.filter((e) => e.op === 'r');
  if (chunkRows.length === 0) return;
  const mark = (event: ChangeEvent, first: boolean, last: boolean) => {
    const value: SnapshotMark | undefined =
      last && where.snapshotLast ? 'last' : first && where.snapshotFirst ? 'first' : last && where.tableLast ? 'last_in_data_collection' : first && where.tableFirst ? 'first_in_data_collection' : undefined;
    if (value) addSourceDetails(event, { snapshotMark: value });
  };
  const [head, tail] = [chunkRows[0], chunkRows[chunkRows.length - 1]];
  mark(head, true, head === tail);
  if (tail !== head) mark(tail, false, true);
}

export function sourceDetails(event: ChangeEvent): SourceDetails | undefined {
  return (event as WithDetails)[SOURCE_DETAILS];
}

/** Adds `details` to the event's own (merging with what it has); returns the event. */
export function addSourceDetails<E extends ChangeEvent>(event: E, details: SourceDetails): E {
  const target = event as WithDetails;
  target[SOURCE_DETAILS] = { ...target[SOURCE_DETAILS], ...details };
  return event;
}
