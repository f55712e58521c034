import { ChangeEvent, Op, Row } from '../../core/event/change-event';
import { makeVersion } from '../../core/event/version';
import { addSourceDetails } from '../../core/event/source-details';
import { mysqlColumnTypesOf, mysqlJsonText } from './column-types';
import { SourceBatch } from '../../core/contracts/source';
import { DecodedEvent, RawRow, TableShape } from './binlog-decoder';
import { BinlogPosition, formatBinlogPosition, packBinlogPosition } from './binlog-position';
import { serializeCheckpoint } from './checkpoint';
import { DdlEffect, parseDdl } from './ddl';
import { emptyGtidStateFor, GtidState, parseGtidState } from './gtid';
import { ColumnShape, normalizeValue } from './types';

export interface MysqlAssemblerOptions {
  sourceName: string;
  /** Build the events' SOURCE_DETAILS (SourceStreamOptions.sourceDetails); default true. */
  sourceDetails?: boolean;
  /** Whether `db.table` is captured. */
  isCaptured(table: string): boolean;
  /** MariaDB JSON columns of `db.table` (LONGTEXT in the binlog; the catalog knows them). */
  jsonColumns(table: string): ReadonlySet<string>;
  /** Catalog primary key of `db.table`, for events whose table map carries none. */
  primaryKey(table: string): string[] | undefined;
  /** A transaction larger than this is handed over in parts, so memory stays bounded. */
  maxBatchEvents: number;
  /** ... or once its rows events not yet handed over reach this many bytes (counted when the decoder tells an event's size; default: no byte bound). */
  maxBatchBytes?: number;
  /** A DDL statement touched captured tables (the catalog may need a refresh). */
  onDdl?(effects: DdlEffect[], sql: string): void;
  /** Sees every change event as it is assembled (resync watermark windows watch these). */
  onRowEvent?(event: ChangeEvent): void;
  /** `db.table` of the resync watermarks: its rows are never emitted, only handed to onWatermark. */
  watermarkTable?: string;
  /**
   * A row written to the watermark table, with its transaction; change events
   * it returns join that transaction (they take index 0 of its version).
   */
  onWatermark?(row: Row, transaction: WatermarkTransaction): ChangeEvent[] | void;
}

export interface WatermarkTransaction {
  /** Packed position of the transaction's start: the position part of its versions. */
  commitPosition: bigint;
  /** The same place as text (`binlog.000042:1234`), for events' source.position. */
  position: string;
}

interface OpenTransaction {
  /** Orders the transaction among all others (see below). */
  commitPosition: bigint;
  position: string;
  gtid: string | null;
  timestampMs: number;
  /** Index of the next change within the transaction; 0 is reserved for snapshot rows. */
  nextIndex: number;
  /** Where a restart resumes to read this transaction again (the boundary before it). */
  startBoundary: BinlogPosition;
  /** The XA transaction id (`X'6131',X'',1`) once `XA END` was read: its end is an XA PREPARE, not a commit. */
  xid?: string;
  /** Begun as an XA transaction (XA START): not handed over in parts before its outcome. */
  mayBeXa?: boolean;
  /** The thread that ran it, when the binlog says (Debezium's source.thread). */
  thread?: number;
}

/** An XA transaction prepared but not yet committed or rolled back: its changes wait for the outcome. */
interface PreparedXa {
  events: ChangeEvent[];
  startBoundary: BinlogPosition;
}

/** `XA END|COMMIT|ROLLBACK <xid> [ONE PHASE]` → the verb and the xid as the binlog spells it. */
const XA_STATEMENT = /^XA\s+(END|COMMIT|ROLLBACK)\s+(.+?)(\s+ONE\s+PHASE)?\s*$/is;

/**
 * Turns decoded binlog events into change events grouped by transaction.
 *
 * Versions are (position of the transaction's first event, index within the
 * transaction). The binlog is written in commit order and a transaction's
 * events are contiguous, so the start of its event group orders transactions
 * exactly as their commits do (unlike the Postgres WAL, where changes of
 * concurrent transactions interleave). Using the start, known at BEGIN, lets a
 * big transaction be emitted in parts with its final versions before its end
 * is read. A snapshot taken at position P covers every group ending at or
 * before P; every later group starts at or after P and gets an index ≥ 1, so
 * its changes win over the snapshot's rows (index 0).
 *
 * Checkpoints are only ever transaction boundaries: a part of a big
 * transaction carries the previous boundary, so a crash replays the whole
 * transaction (with the same versions, so sinks ignore the repeats).
 *
 * XA transactions (MariaDB 10.11 writes XA START … XA END, then an
 * XA_PREPARE_LOG_EVENT; later, in a group of its own, a Query `XA COMMIT xid`
 * or `XA ROLLBACK xid`): the prepared changes are held, emitted at XA COMMIT
 * with versions of the commit's group (rows stay locked between prepare and
 * commit, so no other change of them comes in between), dropped at XA
 * ROLLBACK. While one is held the checkpoint stays before its XA START, so a
 * crash reads the prepare again.
 */
export class MysqlTransactionAssembler {
  private open: OpenTransaction | null = null;
  private pending: ChangeEvent[] = [];
  /** Binlog bytes of the rows events behind `pending`. */
  private pendingBytes = 0;
  private readonly preparedXa = new Map<string, PreparedXa>();
  private boundary: BinlogPosition;
  private gtidState: GtidState | null;
  private readonly shapes = new WeakMap<TableShape, ColumnShape[]>();
  /** "schema.table" split once per table, not once per row. */
  private readonly splitNames = new Map<string, { schema: string; table: string }>();

  constructor(private readonly options: MysqlAssemblerOptions, resumeFrom: BinlogPosition) {
    this.boundary = resumeFrom;
    this.gtidState = resumeFrom.gtid ? parseGtidState(resumeFrom.gtid) : null;
  }

  get inTransaction(): boolean {
    return this.open !== null;
  }

  /** The last transaction boundary read: where a restart resumes. */
  get position(): BinlogPosition {
    return this.boundary;
  }

  /** Feeds one event; returns a batch when one is ready (possibly without events: the checkpoint moved). */
  onEvent(event: DecodedEvent): SourceBatch | null {
    switch (event.kind) {
      case 'begin':
        this.open = {
          commitPosition: packBinlogPosition(event.position),
          position: formatBinlogPosition({ file: event.position.file, offset: event.position.offset }),
          gtid: event.gtid,
          timestampMs: event.timestampMs,
          nextIndex: 1,
          startBoundary: this.boundary,
          mayBeXa: event.xa === true,
          ...(event.thread !== undefined && { thread: event.thread }),
        };
        return null;
      case 'rows': {
        const held = this.pending.length;
        this.addRows(event);
        if (this.pending.length > held) this.pendingBytes += event.bytes ?? 0; // rows of tables not captured hold nothing
        return this.partialBatch();
      }
      case 'statement':
        return this.onStatement(event);
      case 'commit': {
        const xid = this.open?.xid;
        if (event.xaPrepare && xid !== undefined) {
          // XA PREPARE: hold the changes until the outcome is read.
          this.preparedXa.set(xid, { events: this.pending, startBoundary: this.open!.startBoundary });
          this.pending = [];
        }
        this.open = null;
        this.advance(event.end, event.gtid);
        return this.takeBatch(event.timestampMs);
      }
      default:
        return null;
    }
  }

  /** On an idle binlog: an empty batch that moves lag to zero (null inside a transaction). */
  idleBatch(nowMs: number): SourceBatch | null {
    if (this.open || this.pending.length > 0) return null;
    return this.takeBatch(nowMs);
  }

  private onStatement(event: Extract<DecodedEvent, { kind: 'statement' }>): SourceBatch | null {
    const xa = XA_STATEMENT.exec(event.sql);
    if (xa) return this.onXaStatement(event, xa[1].toUpperCase() as 'END' | 'COMMIT' | 'ROLLBACK', xa[2].trim());
    const effects = parseDdl(event.sql, event.schema);
    const relevant = effects.filter((e) => this.options.isCaptured(e.table) || (e.op === 'rename' && this.options.isCaptured(e.to)));
    if (relevant.length > 0) this.options.onDdl?.(relevant, event.sql);
    const standalone = event.end !== null && !this.open;
    if (standalone) {
      this.open = {
        commitPosition: packBinlogPosition(event.end!),
        position: formatBinlogPosition({ file: event.end!.file, offset: event.end!.offset }),
        gtid: event.gtid,
        timestampMs: event.timestampMs,
        nextIndex: 1,
        startBoundary: this.boundary,
      };
    }
    if (this.open) {
      for (const effect of relevant) {
        // Rows of a truncated, dropped, replaced or renamed-away table are gone from the source.
        if (effect.op === 'truncate' || effect.op === 'drop' || effect.op === 'replace' || (effect.op === 'rename' && this.options.isCaptured(effect.table))) {
          this.push(this.event('t', effect.table, {}, null, null));
        }
      }
    }
    if (!standalone) return this.partialBatch();
    this.open = null;
    this.advance(event.end!, event.gtid);
    return this.takeBatch(event.timestampMs);
  }

  /**
   * XA END inside the transaction marks it as XA (its end event is the prepare).
   * XA COMMIT / ROLLBACK of a held transaction, in a group of its own: emit its
   * changes as this group's, or drop them.
   */
  private onXaStatement(event: Extract<DecodedEvent, { kind: 'statement' }>, verb: 'END' | 'COMMIT' | 'ROLLBACK', xid: string): SourceBatch | null {
    if (verb === 'END') {
      if (this.open) this.open.xid = xid;
      return null;
    }
    const prepared = this.preparedXa.get(xid);
    this.preparedXa.delete(xid);
    if (event.end === null || this.open) return null; // inside a group: not the outcome of a held transaction
    this.open = {
      commitPosition: packBinlogPosition(event.end),
      position: formatBinlogPosition({ file: event.end.file, offset: event.end.offset }),
      gtid: event.gtid,
      timestampMs: event.timestampMs,
      nextIndex: 1,
      startBoundary: this.boundary,
    };
    if (verb === 'COMMIT' && prepared) {
      const tx = this.open;
      for (const change of prepared.events) {
        change.source.position = tx.position;
        change.source.version = makeVersion(tx.commitPosition, tx.nextIndex++);
        change.source.ts_ms = tx.timestampMs;
        if (tx.gtid) change.source.txId = tx.gtid;
        this.push(change);
      }
    }
    this.open = null;
    this.advance(event.end, event.gtid);
    return this.takeBatch(event.timestampMs);
  }

  private addRows(event: Extract<DecodedEvent, { kind: 'rows' }>): void {
    const name = `${event.table.schema}.${event.table.table}`;
    if (name === this.options.watermarkTable) return this.addWatermarks(event, name);
    if (!this.options.isCaptured(name)) return;
    const columns = this.columnsOf(event.table, name);
    const keyColumns = event.table.primaryKey.length > 0 ? event.table.primaryKey : this.options.primaryKey(name);
    if (!keyColumns || keyColumns.length === 0) {
      throw new Error(`table ${name} has no primary key in the binlog at ${this.open?.position ?? formatBinlogPosition(this.boundary)}: add one (ALTER TABLE ${name} ADD PRIMARY KEY (...)) so its rows can be told apart`);
    }
    const decode = (raw: RawRow | null): Row | null => {
      if (!raw) return null;
      const row: Row = {};
      for (const column of columns) row[column.name] = normalizeValue(column, raw[column.name]);
      return row;
    };
    const keyOf = (row: Row): Row => {
      const key: Row = {};
      for (const c of keyColumns) key[c] = row[c];
      return key;
    };
    // For the Debezium topics (never in the native log): column types, JSON text, thread, primary-key moves.
    const columnTypes = mysqlColumnTypesOf(columns);
    const thread = this.open?.thread;
    let row = 0;
    const wanted = this.options.sourceDetails !== false;
    const withDetails = (change: ChangeEvent, raw: { before: RawRow | null; after: RawRow | null }, extra?: { newKey?: Row; oldKey?: Row }): ChangeEvent => {
      if (!wanted) return change;
      const json = { before: mysqlJsonText(columns, raw.before), after: mysqlJsonText(columns, raw.after) };
      const binlogEvent = event.eventPosition !== undefined ? { binlogEvent: { pos: event.eventPosition, row } } : {};
      return addSourceDetails(change, { columnTypes, ...(thread !== undefined && { thread }), ...(event.serverId !== undefined && { serverId: event.serverId }), ...((json.before || json.after) && { jsonText: json }), ...binlogEvent, ...extra });
    };
    for (const [index, raw] of event.rows.entries()) {
      row = index;
      const before = decode(raw.before);
      const after = decode(raw.after);
      if (event.op === 'insert') this.push(withDetails(this.event('c', name, keyOf(after!), null, after), raw));
      else if (event.op === 'delete') this.push(withDetails(this.event('d', name, keyOf(before!), before, null), raw));
      else {
        const oldKey = keyOf(before!);
        const newKey = keyOf(after!);
        if (!sameKey(keyColumns, oldKey, newKey)) {
          // The primary key changed: readers see the old key go and the new one come.
          this.push(withDetails(this.event('d', name, oldKey, before, null), { before: raw.before, after: null }, { newKey }));
          this.push(withDetails(this.event('c', name, newKey, null, after), { before: null, after: raw.after }, { oldKey }));
        } else {
          this.push(withDetails(this.event('u', name, newKey, before, after), raw));
        }
      }
    }
  }

  /** Watermark rows (inserted or updated) go to the resync coordinator, never to the log. */
  private addWatermarks(event: Extract<DecodedEvent, { kind: 'rows' }>, name: string): void {
    const tx = this.open;
    if (!tx || !this.options.onWatermark) return;
    const columns = this.columnsOf(event.table, name);
    for (const raw of event.rows) {
      if (!raw.after) continue;
      const row: Row = {};
      for (const column of columns) row[column.name] = normalizeValue(column, raw.after[column.name]);
      const injected = this.options.onWatermark(row, { commitPosition: tx.commitPosition, position: tx.position });
      if (injected) this.pending.push(...injected);
    }
  }

  private push(event: ChangeEvent): void {
    this.pending.push(event);
    this.options.onRowEvent?.(event);
  }

  /** The table's columns, with MariaDB JSON columns (LONGTEXT in the binlog) marked as JSON. */
  private columnsOf(table: TableShape, name: string): ColumnShape[] {
    let columns = this.shapes.get(table);
    if (!columns) {
      const json = this.options.jsonColumns(name);
      columns = table.columns.map((c) => (c.kind === 'text' && json.has(c.name) ? { ...c, kind: 'json' as const } : c));
      this.shapes.set(table, columns);
    }
    return columns;
  }

  private event(op: Op, table: string, key: Row, before: Row | null, after: Row | null): ChangeEvent {
    const tx = this.open!;
    let names = this.splitNames.get(table);
    if (!names) {
      const dot = table.indexOf('.');
      names = { schema: table.slice(0, dot), table: table.slice(dot + 1) };
      this.splitNames.set(table, names);
    }
    const source: ChangeEvent['source'] = {
      connector: 'mysql',
      name: this.options.sourceName,
      db: names.schema,
      schema: names.schema,
      table: names.table,
      position: tx.position,
      version: makeVersion(tx.commitPosition, tx.nextIndex++),
      ts_ms: tx.timestampMs,
    };
    if (tx.gtid) source.txId = tx.gtid;
    return { op, key, before, after, source, ts_ms: Date.now() };
  }

  private advance(end: BinlogPosition, gtid: string | null): void {
    if (gtid) {
      this.gtidState ??= emptyGtidStateFor(gtid);
      this.gtidState.add(gtid);
    }
    this.boundary = { file: end.file, offset: end.offset, ...(this.gtidState ? { gtid: this.gtidState.toString() } : {}) };
  }

  private partialBatch(): SourceBatch | null {
    if (this.pending.length === 0) return null;
    if (this.pending.length < this.options.maxBatchEvents && this.pendingBytes < (this.options.maxBatchBytes ?? Infinity)) return null;
    // A transaction that may turn out to be an XA PREPARE is not handed over before its outcome.
    if (this.open?.xid !== undefined || this.open?.mayBeXa) return null;
    // Part of a transaction: the checkpoint stays at the last complete one.
    return this.takeBatch(this.open?.timestampMs ?? Date.now());
  }

  private takeBatch(commitTimeMs: number): SourceBatch {
    const events = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (const e of events) e.source.ts_ms = commitTimeMs;
    return { events, checkpoint: serializeCheckpoint({ position: this.resumePosition() }), commitTimeMs };
  }

  /** The boundary, or while XA transactions are held, the start of the oldest one: a restart must read its changes again. */
  private resumePosition(): BinlogPosition {
    let oldest: BinlogPosition | null = null;
    for (const { startBoundary } of this.preparedXa.values()) {
      if (!oldest || packBinlogPosition(startBoundary) < packBinlogPosition(oldest)) oldest = startBoundary;
    }
    return oldest ?? this.boundary;
  }
}

/** Whether a row's key stayed the same (values compared as their JSON, as keys are compared everywhere). */
function sameKey(columns: readonly string[], a: Row, b: Row): boolean {
  for (const column of columns) {
    const x = a[column];
    const y = b[column];
    if (x !== y && (typeof x !== 'object' || typeof y !== 'object' || JSON.stringify(x) !== JSON.stringify(y))) return false;
  }
  return true;
}
