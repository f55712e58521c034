import { Connection, RowDataPacket } from 'mysql2/promise';
import { ChunkSizer } from '../shared/chunk-sizer';
import { addSourceDetails, markSnapshotChunk, SourceDetails } from '../../core/event/source-details';
import { mysqlColumnTypesOf, mysqlJsonText } from './column-types';
import { ChangeEvent, Row } from '../../core/event/change-event';
import { makeVersion, snapshotVersion } from '../../core/event/version';
import { Logger } from '../../core/runtime/logger';
import { SourceBatch, SourceProgress } from '../../core/contracts/source';
import { MysqlConnectionOptions } from './binlog-decoder';
import { BinlogPosition, formatBinlogPosition, packBinlogPosition } from './binlog-position';
import { MysqlCatalog } from './catalog';
import { restoreKey, saveKey, serializeCheckpoint, SnapshotProgress, TableSnapshotProgress } from './checkpoint';
import { openConnection, quitConnection, quoteIdent, quoteTable, serverErrorCode, splitTable } from './connection';
import { ColumnShape, normalizeValue } from './types';

/**
 * How the snapshot learns the binlog position its view corresponds to:
 * - consistent: MariaDB's START TRANSACTION WITH CONSISTENT SNAPSHOT reports
 *   it (binlog_snapshot_file/position), no lock at all;
 * - ftwrl: elsewhere (MySQL), FLUSH TABLES WITH READ LOCK holds commits
 *   still for the moment it takes to open the transaction and read the position;
 * - resume: a snapshot resumed after a crash reuses its saved position, so
 *   it needs no position and no lock.
 */
export type SnapshotStart = 'consistent' | 'ftwrl' | 'resume';

export interface OpenSnapshot {
  connection: Connection;
  /** The binlog position of the view; null when resuming. */
  position: BinlogPosition | null;
}

/**
 * Opens the snapshot's connection and transaction. When `signal` aborts, the
 * connection is destroyed at once (failing the statement in flight), so
 * neither this nor a read on the connection outlives the attempt.
 */
export async function openSnapshot(options: MysqlConnectionOptions, start: SnapshotStart, signal?: AbortSignal): Promise<OpenSnapshot> {
  const connection = await openConnection(options, { signal, quitMs: 0 });
  try {
    await connection.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    if (start === 'resume') {
      await connection.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      return { connection, position: null };
    }
    if (start === 'consistent') {
      await connection.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      const [status] = await connection.query<RowDataPacket[]>(`SHOW STATUS LIKE 'binlog_snapshot_%'`);
      const value = (name: string) => status.find((r) => String(r.Variable_name).toLowerCase() === name)?.Value as string | undefined;
      const file = value('binlog_snapshot_file');
      const offset = Number(value('binlog_snapshot_position'));
      if (!file) throw new Error('the server reports no binlog_snapshot_file for a consistent snapshot (is log_bin on?)');
      return { connection, position: { file, offset, ...(await gtidAt(connection, file, offset)) } };
    }
    return { connection, position: await lockedPosition(connection) };
  } catch (error) {
    await quitConnection(connection);
    throw error;
  }
}

/** FLUSH TABLES WITH READ LOCK, open the view, read the position, unlock: commits wait only for these few statements. */
async function lockedPosition(connection: Connection): Promise<BinlogPosition> {
  try {
    await connection.query('FLUSH TABLES WITH READ LOCK');
  } catch (error) {
    if (serverErrorCode(error) !== 1227) throw error;
    throw new Error('the snapshot needs a brief global read lock on this server (FLUSH TABLES WITH READ LOCK): GRANT RELOAD ON *.* TO the source user');
  }
  try {
    await connection.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    const status = await binlogStatus(connection);
    const executed = String(status.Executed_Gtid_Set ?? '').replace(/\s/g, '');
    const position: BinlogPosition = { file: String(status.File), offset: Number(status.Position) };
    const gtid = executed || (await gtidAt(connection, position.file, position.offset)).gtid;
    return gtid ? { ...position, gtid } : position;
  } finally {
    await connection.query('UNLOCK TABLES');
  }
}

/** SHOW MASTER STATUS, renamed SHOW BINARY LOG STATUS in MySQL 8.4. */
async function binlogStatus(connection: Connection): Promise<RowDataPacket> {
  let rows: RowDataPacket[];
  try {
    [rows] = await connection.query<RowDataPacket[]>('SHOW BINARY LOG STATUS');
  } catch {
    [rows] = await connection.query<RowDataPacket[]>('SHOW MASTER STATUS');
  }
  if (!rows[0]?.File) throw new Error('the server reports no binlog position (SHOW MASTER STATUS is empty: is log_bin on?)');
  return rows[0];
}

/** The binlog's current end: where a source without a snapshot starts. */
export async function currentPosition(connection: Connection): Promise<BinlogPosition> {
  const status = await binlogStatus(connection);
  const position: BinlogPosition = { file: String(status.File), offset: Number(status.Position) };
  const gtid = String(status.Executed_Gtid_Set ?? '').replace(/\s/g, '') || (await gtidAt(connection, position.file, position.offset)).gtid;
  return gtid ? { ...position, gtid } : position;
}

/** MariaDB: the GTID state at a binlog position; {} elsewhere. */
async function gtidAt(connection: Connection, file: string, offset: number): Promise<{ gtid?: string }> {
  try {
    const [rows] = await connection.query<RowDataPacket[]>('SELECT BINLOG_GTID_POS(?, ?) AS gtid', [file, offset]);
    const gtid = rows[0]?.gtid as string | null;
    return gtid ? { gtid } : {};
  } catch {
    return {};
  }
}

export interface SnapshotReadOptions {
  sourceName: string;
  catalog: MysqlCatalog;
  progress: SnapshotProgress;
  chunkSize: number;
  emit(batch: SourceBatch): Promise<void>;
  report: SourceProgress;
  signal: AbortSignal;
  logger: Logger;
  /** Build the events' SOURCE_DETAILS (SourceStreamOptions.sourceDetails: only Debezium topics read them); default true. */
  sourceDetails?: boolean;
}

/**
 * Reads every captured table in primary-key chunks inside the open snapshot
 * transaction and emits the rows as 'r' events carrying the snapshot's
 * version; each batch's checkpoint records the progress, so a crash resumes
 * at the next chunk. Before a table's first chunk comes a truncate just
 * below the snapshot's version: a re-snapshot (after a purge, or with mode
 * always) removes rows deleted while the source was not reading.
 *
 * Resuming reads the remaining chunks in a fresh, later view. That is safe:
 * streaming starts at the original position, so every change after it
 * arrives with a higher version and wins.
 */
export async function readSnapshot(connection: Connection, options: SnapshotReadOptions): Promise<void> {
  for (const table of options.catalog.tables) {
    if (options.signal.aborted) return;
    if (!options.progress.tables[table]?.done) await readTable(connection, table, options);
  }
}

async function readTable(connection: Connection, name: string, options: SnapshotReadOptions): Promise<void> {
  const { progress, logger } = options;
  const key = options.catalog.primaryKey(name)!;
  const columns = await options.catalog.columns(name);
  const estimate = await estimateRows(connection, name);
  const state: TableSnapshotProgress = progress.tables[name] ?? { done: false, rows: 0 };
  logger.info(state.rows > 0 ? 'resuming table snapshot' : 'snapshotting table', { table: name, rowsDone: state.rows, estimatedRows: estimate });
  const startedAt = Date.now();
  let lastLog = startedAt;
  const details = options.sourceDetails !== false;
  const first = state.afterKey === undefined ? [truncateBelow(name, columns, options, details)] : [];
  const sizer = new ChunkSizer(options.chunkSize);
  while (!state.done && !options.signal.aborted) {
    const afterKey = state.afterKey ? restoreKey(state.afterKey) : undefined;
    const limit = sizer.next();
    const [rows] = await connection.query<RowDataPacket[]>(chunkQuery(name, columns, key, afterKey !== undefined, limit), afterKey ? chunkParameters(afterKey) : []);
    const shared = chunkShared(name, columns, options);
    const rowEvents = rows.map((raw) => rowEvent(raw, shared, columns, key, details));
    sizer.observe(rowEvents);
    const events = [...first.splice(0), ...rowEvents];
    const last = rows[rows.length - 1];
    const snapshotFirst = Object.values(progress.tables).every((t) => t.rows === 0);
    Object.assign(state, { done: rows.length < limit, rows: state.rows + rows.length, afterKey: last ? saveKey(key.map((c) => last[c])) : state.afterKey });
    progress.tables[name] = state;
    // Debezium's snapshot marks (first / first and last in table / last).
    if (details) markSnapshotChunk(events, { tableFirst: state.rows === rows.length, tableLast: state.done, snapshotFirst, snapshotLast: state.done && options.catalog.tables.every((t) => progress.tables[t]?.done) });
    // Progress changes and the batch is queued in one synchronous step, so a
    // checkpoint never covers rows of a chunk that is not queued before it.
    const emitted = options.emit({ events, checkpoint: serializeCheckpoint({ position: progress.position, snapshot: progress }), commitTimeMs: Date.now() });
    options.report.snapshotRows(name, rows.length, Math.max(0, estimate - state.rows));
    await emitted;
    if (Date.now() - lastLog > 5000 || state.done) {
      lastLog = Date.now();
      const seconds = Math.max((Date.now() - startedAt) / 1000, 0.001);
      logger.info(state.done ? 'table snapshot done' : 'table snapshot progress', { table: name, rows: state.rows, estimatedRows: estimate, rowsPerSecond: Math.round(state.rows / seconds) });
    }
  }
  if (state.done) options.report.snapshotRows(name, 0, 0);
}

/**
 * Keyset pagination in primary-key order, optionally limited by an operator's
 * SQL condition (resync --where); FLOAT read as DOUBLE, because its text form has only 6 digits.
 */
export function chunkQuery(table: string, columns: ColumnShape[], key: string[], afterKey: boolean, chunkSize: number, condition?: string): string {
  const select = columns.map((c) => (c.kind === 'float' ? `${quoteIdent(c.name)} + 0e0 AS ${quoteIdent(c.name)}` : quoteIdent(c.name)));
  // (a, b) > (?, ?) spelled out, which every MySQL/MariaDB version turns into an index range.
  const after = key.map((_, i) => [...key.slice(0, i).map((c) => `${quoteIdent(c)} = ?`), `${quoteIdent(key[i])} > ?`].join(' AND '));
  const conditions = [afterKey ? `((${after.join(') OR (')}))` : '', condition ? `(${condition}\n)` : '' /* the newline ends a trailing -- comment */].filter(Boolean);
  const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
  return `SELECT ${select.join(', ')} FROM ${quoteTable(table)} ${where} ORDER BY ${key.map(quoteIdent).join(', ')} LIMIT ${chunkSize}`;
}

/** Parameters for chunkQuery's WHERE: each disjunct repeats the key prefix. */
export function chunkParameters(afterKey: unknown[]): unknown[] {
  return afterKey.flatMap((_, i) => afterKey.slice(0, i + 1));
}

/** What the row events of one chunk share: worked out once per chunk, not per row (a few % of the snapshot's CPU each). */
interface ChunkShared {
  sourceName: string;
  schema: string;
  table: string;
  position: string;
  version: string;
  /** Column types, and MariaDB's connector name when the GTID state says so. */
  details: SourceDetails;
}

function chunkShared(name: string, columns: ColumnShape[], options: SnapshotReadOptions): ChunkShared {
  const { schema, table } = splitTable(name);
  const position = options.progress.position;
  return {
    sourceName: options.sourceName,
    schema,
    table,
    position: formatBinlogPosition({ file: position.file, offset: position.offset }),
    version: snapshotVersion(packBinlogPosition(position)),
    details: { columnTypes: mysqlColumnTypesOf(columns), ...(isMariaDbGtid(position.gtid) && { mariadb: true }) },
  };
}

function rowEvent(raw: RowDataPacket, shared: ChunkShared, columns: ColumnShape[], key: string[], details: boolean): ChangeEvent {
  const row: Row = {};
  for (const column of columns) row[column.name] = normalizeValue(column, raw[column.name]);
  const rowKey: Row = {};
  for (const column of key) rowKey[column] = row[column];
  const event = snapshotEvent('r', shared, rowKey, row, shared.version);
  if (!details) return event;
  const json = mysqlJsonText(columns, raw);
  return addSourceDetails(event, json ? { ...shared.details, jsonText: { after: json } } : shared.details);
}

/** Just below the snapshot rows' version and above every change before the snapshot position. */
function truncateBelow(name: string, columns: ColumnShape[], options: SnapshotReadOptions, details: boolean): ChangeEvent {
  const shared = chunkShared(name, columns, options);
  const event = snapshotEvent('t', shared, {}, null, makeVersion(packBinlogPosition(options.progress.position) - 1n, 0xffffffff));
  return details && shared.details.mariadb ? addSourceDetails(event, { mariadb: true }) : event;
}

function snapshotEvent(op: 'r' | 't', shared: ChunkShared, key: Row, after: Row | null, version: string): ChangeEvent {
  const now = Date.now();
  const { sourceName: name, schema, table, position } = shared;
  return {
    op,
    key,
    before: null,
    after,
    source: { connector: 'mysql', name, db: schema, schema, table, position, version, snapshot: true, ts_ms: now },
    ts_ms: now,
  };
}

/** A MariaDB GTID state (domain-server-sequence) names the server kind: the Debezium topics say connector "mariadb". */
function isMariaDbGtid(gtid: string | undefined): boolean {
  return /^\d+-\d+-\d+(,|$)/.test(gtid ?? '');
}

async function estimateRows(connection: Connection, name: string): Promise<number> {
  const { schema, table } = splitTable(name);
  const [rows] = await connection.query<RowDataPacket[]>('SELECT TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [schema, table]);
  return Number(rows[0]?.n ?? 0);
}
