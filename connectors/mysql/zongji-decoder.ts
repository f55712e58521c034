import type ZongJiClass from '@vlasky/zongji' with { 'resolution-mode': 'import' };
import type { AnyBinlogEvent, RowData, TableMapEvent, UpdateRowData } from '@vlasky/zongji' with { 'resolution-mode': 'import' };
import { BinlogDecoder, DecodedEvent, DecoderStartOptions, RawRow, TableShape } from './binlog-decoder';
import { BinlogPosition } from './binlog-position';
import { ColumnShape, columnShape } from './types';

export type ZongJi = InstanceType<typeof ZongJiClass>;

/** zongji is an ES module; this CommonJS build loads it once, on first use. */
let zongjiModule: Promise<typeof import('@vlasky/zongji', { with: { 'resolution-mode': 'import' } })> | null = null;
const loadZongji = () => (zongjiModule ??= import('@vlasky/zongji'));

const WANTED_EVENTS = [
  'rotate', 'mariadbgtid', 'gtid', 'anonymousgtid', 'query', 'xid', 'xaprepare',
  'tablemap', 'writerows', 'updaterows', 'deleterows', 'heartbeat',
];

const ROW_OPS = { writerows: 'insert', updaterows: 'update', deleterows: 'delete' } as const;

/**
 * The binlog decoder on @vlasky/zongji (pinned 0.9.0). zongji is told to keep
 * temporal values as text (dateStrings; TIMESTAMP rendered in UTC) and JSON
 * as text, and to decode rows from the binlog's own table metadata
 * (binlog_row_metadata=FULL), so an ALTER TABLE never makes old events
 * decode with a newer shape. Two zongji quirks are corrected here: YEAR 0000
 * arrives as 1900, and the empty ENUM value ('' , index 0) as undefined.
 */
export class ZongjiDecoder implements BinlogDecoder {
  private zongji: ZongJi | null = null;
  /** stop() was called: a start still loading zongji must not open connections after it. */
  private stopped = false;
  private file = '';
  private readonly shapes = new Map<number, TableShape>();
  private inTransaction = false;
  /** MySQL: the GTID event precedes BEGIN or a DDL statement. */
  private pendingGtid: { gtid: string | null; position: BinlogPosition } | null = null;

  async start(options: DecoderStartOptions): Promise<void> {
    const { default: ZongJi } = await loadZongji();
    if (this.stopped) throw new Error('the binlog decoder was stopped before it started');
    const { host, port, user, password, ssl } = options.connection;
    // The binlog connection gets the same TLS settings as every query connection.
    const zongji = new ZongJi({ host, port, user, password, ...(ssl ? { ssl } : {}), charset: 'utf8mb4', dateStrings: true, timezone: 'Z', jsonStrings: true }) as ZongJi;
    this.zongji = zongji;
    this.file = options.from.file;
    await new Promise<void>((resolve, reject) => {
      let started = false;
      zongji.on('error', (error: Error) => (started ? options.onError(error) : reject(error)));
      zongji.once('ready', () => {
        started = true;
        this.onReady(zongji, options);
        zongji.connection?.once('end', () => options.onError(new Error('the server closed the binlog connection')));
        resolve();
      });
      zongji.on('binlog', (event: AnyBinlogEvent) => {
        try {
          const decoded = this.translate(event);
          if (decoded) options.onEvent(decoded);
        } catch (error) {
          options.onError(error as Error);
        }
      });
      zongji.start({
        serverId: options.serverId,
        filename: options.from.file,
        position: options.from.offset,
        includeEvents: WANTED_EVENTS,
        includeSchema: schemaFilter(options.tables),
      });
      if (options.heartbeatIntervalMs > 0) {
        // Queued on the binlog connection before zongji's dump request, so the server applies it to this dump.
        zongji.connection?.query(`SET @master_heartbeat_period = ${BigInt(options.heartbeatIntervalMs) * 1_000_000n}`, () => undefined);
      }
    });
  }

  /**
   * Called once the binlog connection is ready, before zongji sends the dump
   * request: native-rows-decoder.ts takes over the rows events here.
   */
  protected onReady(_zongji: ZongJi, _options: DecoderStartOptions): void {}

  pause(): void {
    this.zongji?.connection?.pause();
  }

  resume(): void {
    this.zongji?.connection?.resume();
  }

  /**
   * Stops zongji (it KILLs its dump thread over its control connection), then
   * destroys both of its sockets: zongji's destroy() only half-closes them, so
   * on a network that stopped answering they would linger, and a start still
   * waiting on them (stopped mid-start) would never settle anyway.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    const zongji = this.zongji;
    this.zongji = null;
    if (!zongji) return;
    type Socketed = { stream?: { destroy(): void } } | null | undefined;
    const sockets = [(zongji.connection as Socketed)?.stream, ((zongji as unknown as { ctrlConnection?: Socketed }).ctrlConnection)?.stream];
    zongji.removeAllListeners('binlog');
    zongji.removeAllListeners('error');
    zongji.on('error', () => undefined);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      zongji.once('stopped', () => {
        clearTimeout(timer);
        resolve();
      });
      zongji.stop();
    });
    for (const socket of sockets) socket?.destroy();
  }

  private translate(event: AnyBinlogEvent): DecodedEvent | null {
    const timestampMs = event.timestamp;
    const end = (): BinlogPosition => ({ file: this.file, offset: event.nextPosition });
    switch (event.getEventName()) {
      case 'rotate':
        this.file = (event as { binlogName: string }).binlogName;
        return null;
      case 'mariadbgtid': {
        const gtid = event as AnyBinlogEvent & { gtid: string; standalone: boolean; preparedXa?: boolean; threadId?: number };
        if (gtid.standalone) {
          this.pendingGtid = { gtid: gtid.gtid, position: end() };
          return null;
        }
        this.inTransaction = true;
        return { kind: 'begin', position: end(), gtid: gtid.gtid, timestampMs, ...(gtid.preparedXa ? { xa: true } : {}), ...(gtid.threadId !== undefined ? { thread: gtid.threadId } : {}) };
      }
      case 'gtid':
      case 'anonymousgtid':
        this.pendingGtid = { gtid: event.getEventName() === 'gtid' ? (event.gtid ?? null) : null, position: end() };
        return null;
      case 'query':
        return this.translateQuery(event as AnyBinlogEvent & { query: string; schema: string; slaveProxyId?: number }, end(), timestampMs);
      case 'xid':
        return this.commit(end(), event.gtid ?? null, timestampMs);
      case 'xaprepare':
        return { ...this.commit(end(), event.gtid ?? null, timestampMs), xaPrepare: true };
      case 'tablemap':
        this.rememberShape(event as TableMapEvent);
        return null;
      case 'writerows':
      case 'updaterows':
      case 'deleterows':
        return this.translateRows(event as AnyBinlogEvent & { tableId: number; rows: RowData[] | UpdateRowData[]; size: number }, timestampMs);
      case 'heartbeat':
        return { kind: 'heartbeat' };
      default:
        return null;
    }
  }

  private translateQuery(event: { query: string; schema: string; gtid?: string; slaveProxyId?: number }, end: BinlogPosition, timestampMs: number): DecodedEvent | null {
    const sql = event.query.trim();
    if (/^(BEGIN|XA\s+START\b)/i.test(sql)) {
      if (this.inTransaction) return null; // MariaDB: the GTID event already began it
      this.inTransaction = true;
      const pending = this.pendingGtid;
      this.pendingGtid = null;
      const thread = event.slaveProxyId !== undefined ? { thread: event.slaveProxyId } : {};
      return { kind: 'begin', position: pending?.position ?? end, gtid: pending?.gtid ?? event.gtid ?? null, timestampMs, ...(/^XA/i.test(sql) ? { xa: true } : {}), ...thread };
    }
    // MySQL ends a one-phase XA transaction's group with the XA COMMIT itself.
    if ((/^(COMMIT|ROLLBACK)$/i.test(sql) || /^XA\s+COMMIT\b.*\bONE\s+PHASE\s*$/is.test(sql)) && this.inTransaction) return this.commit(end, event.gtid ?? null, timestampMs);
    if (this.inTransaction) return { kind: 'statement', sql, schema: event.schema, end: null, gtid: event.gtid ?? null, timestampMs };
    const gtid = this.pendingGtid?.gtid ?? event.gtid ?? null;
    this.pendingGtid = null;
    return { kind: 'statement', sql, schema: event.schema, end, gtid, timestampMs };
  }

  private commit(end: BinlogPosition, gtid: string | null, timestampMs: number): Extract<DecodedEvent, { kind: 'commit' }> {
    this.inTransaction = false;
    this.pendingGtid = null;
    return { kind: 'commit', end, gtid, timestampMs };
  }

  private rememberShape(event: TableMapEvent): void {
    const entry = event.tableMap[event.tableId];
    if (!entry) return;
    const columns = entry.columnSchemas.map((c) => columnShape(c.COLUMN_NAME, c.COLUMN_TYPE));
    const primaryKey = (event.primaryKey ?? []).map((index) => columns[index].name);
    this.shapes.set(event.tableId, { schema: entry.parentSchema, table: entry.tableName, columns, primaryKey });
  }

  private translateRows(event: { tableId: number; rows: RowData[] | UpdateRowData[]; getEventName(): string; nextPosition: number; size: number }, timestampMs: number): DecodedEvent | null {
    const table = this.shapes.get(event.tableId);
    if (!table) return null; // a table outside the captured ones (its table map was filtered out)
    const op = ROW_OPS[event.getEventName() as keyof typeof ROW_OPS];
    const fix = (row: RowData) => fixQuirks(table, row);
    const rows =
      op === 'update'
        ? (event.rows as UpdateRowData[]).map((r) => ({ before: fix(r.before), after: fix(r.after) }))
        : (event.rows as RowData[]).map((r) => (op === 'insert' ? { before: null, after: fix(r) } : { before: fix(r), after: null }));
    // The event's start: its end minus its length (zongji's size leaves out the 19-byte header and the checksum).
    const length = event.size + 19 + ((this.zongji as { useChecksum?: boolean } | null)?.useChecksum ? 4 : 0);
    const eventPosition = event.nextPosition > length ? event.nextPosition - length : undefined;
    // Header and body, as the native decoder counts them (bytes bounds memory: binlog-stream.ts, transaction-assembler.ts).
    return { kind: 'rows', op, table, rows, timestampMs, ...(eventPosition !== undefined && { eventPosition }), bytes: event.size + 19 };
  }
}

const quirkyColumns = new WeakMap<TableShape, ColumnShape[]>();

function fixQuirks(table: TableShape, row: RowData): RawRow {
  let columns = quirkyColumns.get(table);
  if (!columns) quirkyColumns.set(table, (columns = table.columns.filter((c) => c.kind === 'year' || c.kind === 'enum')));
  for (const column of columns) {
    const value = row[column.name];
    if (column.kind === 'year' && value === 1900) row[column.name] = 0;
    else if (column.kind === 'enum' && value === undefined && column.name in row) row[column.name] = '';
  }
  return row;
}

/** `db.table` and `db.*` → zongji's includeSchema (`{ db: ['table'] }`, `{ db: true }`). */
function schemaFilter(tables: string[]): Record<string, string[] | true> {
  const filter: Record<string, string[] | true> = {};
  for (const name of tables) {
    const dot = name.indexOf('.');
    const [schema, table] = [name.slice(0, dot), name.slice(dot + 1)];
    const current = filter[schema];
    if (table === '*') filter[schema] = true;
    else if (current !== true) filter[schema] = [...(current ?? []), table];
  }
  return filter;
}
