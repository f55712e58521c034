import { Logger } from '../../core/runtime/logger';
import { DecodedEvent, DecoderStartOptions } from './binlog-decoder';
import { BinlogReader } from './native-rows/binlog-reader';
import { CharsetMap, loadCharsetMap } from './native-rows/charsets';
import { COMPRESSED_ROWS_EVENT_TYPES, EVENT_HEADER_BYTES, readRowsEvent, ROWS_EVENT_TYPES, rowsEventTableId } from './native-rows/rows-event';
import { readTableMap, TablePlan } from './native-rows/table-map';
import { ZongJi, ZongjiDecoder } from './zongji-decoder';

const TABLE_MAP_EVENT = 19;
const QUERY_EVENT = 2;

/** A mysql2 packet as zongji's binlog command receives it: `buffer[offset]` is 0x00 before a binlog event. */
interface Packet {
  buffer: Buffer;
  offset: number;
  end: number;
  isEOF(): boolean;
  isError(): boolean;
}
type BinlogData = (this: unknown, packet: Packet, connection: unknown) => unknown;

export interface NativeRowsStats {
  /** Rows events decoded here. */
  nativeEvents: number;
  /** Rows events left to zongji (tables not planned, compressed events, events that did not fit their plan). */
  fallbackEvents: number;
  /** `db.table` → why its rows go through zongji. */
  fallbackTables: Map<string, string>;
}

/**
 * The zongji decoder with rows events decoded here, from the raw packet bytes
 * (native-rows/: table maps, row images, values), instead of by zongji's
 * per-row decoding. Everything else (connection, dump request, checksums,
 * rotate, GTID, query, XID, heartbeat events) stays on the zongji path, and
 * so do the rows events of any table this decoder does not plan, each
 * logged once with its reason and counted in `stats`:
 *   - tables without binlog_row_metadata=FULL metadata (zongji asks INFORMATION_SCHEMA),
 *   - column types other than the integer, FLOAT/DOUBLE, NEWDECIMAL, CHAR/VARCHAR/BINARY/VARBINARY,
 *     BLOB/TEXT (MariaDB JSON), ENUM/SET, BIT, DATE, YEAR and TIME2/DATETIME2/TIMESTAMP2 ones
 *     (classic TIME/DATETIME/TIMESTAMP, GEOMETRY, MySQL's binary JSON, MariaDB COMPRESSED columns),
 *   - text columns in a charset other than utf8mb3/utf8mb4,
 *   - MariaDB's compressed rows events (log_bin_compress=ON),
 *   - an event that does not fit its table map (a column count that differs, bytes past its end).
 * Events come out exactly as on the zongji path (test/unit/mysql-native-rows.test.ts).
 *
 * A planned table's map is not shown to zongji; if one of its rows events has
 * to go to zongji after all, the saved map is replayed to zongji first.
 */
export class NativeRowsDecoder extends ZongjiDecoder {
  readonly stats: NativeRowsStats = { nativeEvents: 0, fallbackEvents: 0, fallbackTables: new Map() };
  private readonly plans = new Map<number, { plan: TablePlan; packet: Buffer; generation: number; zongjiKnows: boolean }>();
  /** Table ids whose last map was left to zongji (for the fallback count). */
  private readonly zongjiTables = new Set<number>();
  /** Raised by every query event but BEGIN/COMMIT/ROLLBACK/XA (DDL): a table map read after one gets a new shape even if its bytes are the same. */
  private generation = 0;
  private charsets: CharsetMap | null = null;

  constructor(private readonly logger?: Logger) {
    super();
  }

  override async start(options: DecoderStartOptions): Promise<void> {
    this.charsets = await loadCharsetMap();
    return super.start(options);
  }

  /** Wraps zongji's packet handler (per instance: zongji builds its binlog command class per start). */
  protected override onReady(zongji: ZongJi, options: DecoderStartOptions): void {
    const Binlog = (zongji as unknown as { BinlogClass: { prototype: { binlogData: BinlogData } } }).BinlogClass;
    const original = Binlog.prototype.binlogData;
    const checksum = (zongji as unknown as { useChecksum: boolean }).useChecksum ? 4 : 0;
    const take = (packet: Packet, connection: unknown, replay: (packet: Packet) => void) => this.take(zongji, connection, packet, checksum, options, replay);
    Binlog.prototype.binlogData = function (this: unknown, packet: Packet, connection: unknown) {
      if (take(packet, connection, (saved) => original.call(this, saved, connection))) return Binlog.prototype.binlogData;
      return original.call(this, packet, connection);
    };
  }

  /** Handles one packet here; false leaves it to zongji. */
  private take(zongji: ZongJi, connection: unknown, packet: Packet, checksum: number, options: DecoderStartOptions, replay: (packet: Packet) => void): boolean {
    const { buffer, offset } = packet;
    if (buffer[offset] !== 0x00 || zongji.stopped || zongji.connection !== connection || packet.end - offset < 1 + EVENT_HEADER_BYTES) return false;
    const start = offset + 1;
    const type = buffer[start + 4];
    const end = packet.end - checksum;
    if (type === TABLE_MAP_EVENT) return this.tableMap(zongji, packet, start, end, checksum);
    if (ROWS_EVENT_TYPES[type]) return this.rows(packet, start, end, options, replay);
    if (COMPRESSED_ROWS_EVENT_TYPES.has(type)) {
      const tableId = rowsEventTableId(buffer, start + EVENT_HEADER_BYTES);
      const entry = this.plans.get(tableId);
      if (entry) this.fallBack(entry, 'compressed rows event (log_bin_compress)', replay);
      else if (this.zongjiTables.has(tableId)) this.stats.fallbackEvents++;
      return false;
    }
    if (type === QUERY_EVENT && !isTransactionControl(buffer, start + EVENT_HEADER_BYTES, end)) this.generation++;
    return false;
  }

  private tableMap(zongji: ZongJi, packet: Packet, start: number, end: number, checksum: number): boolean {
    const { buffer } = packet;
    const body = start + EVENT_HEADER_BYTES;
    const tableId = rowsEventTableId(buffer, body);
    const previous = this.plans.get(tableId);
    // The same map again (every transaction writes one): keep the plan, so its TableShape (and the caches keyed on it) stay.
    if (previous && previous.generation === this.generation && previous.packet.length === packet.end - packet.offset &&
        buffer.compare(previous.packet, 1 + EVENT_HEADER_BYTES, previous.packet.length - checksum, body, end) === 0) return true;
    const skip = (schema: string, table: string) => (zongji as unknown as { _skipSchema(s: string, t: string): boolean })._skipSchema(schema, table);
    const charsets = this.charsets!;
    let result;
    try {
      result = readTableMap(new BinlogReader(buffer, body), end, skip, (id) => charsets.collationToCharset(id), (c) => charsets.charsetMaxLength(c));
    } catch (error) {
      result = { kind: 'fallback' as const, tableId, schema: '?', table: `table id ${tableId}`, reason: `unreadable table map (${(error as Error).message})` };
    }
    this.plans.delete(tableId);
    this.zongjiTables.delete(tableId);
    if (result.kind === 'skipped') return false;
    if (result.kind === 'fallback') {
      this.zongjiTables.add(tableId);
      this.noteFallback(`${result.schema}.${result.table}`, result.reason);
      return false;
    }
    this.plans.set(tableId, { plan: result.plan, packet: Buffer.from(buffer.subarray(packet.offset, packet.end)), generation: this.generation, zongjiKnows: false });
    return true;
  }

  private rows(packet: Packet, start: number, end: number, options: DecoderStartOptions, replay: (packet: Packet) => void): boolean {
    const tableId = rowsEventTableId(packet.buffer, start + EVENT_HEADER_BYTES);
    const entry = this.plans.get(tableId);
    if (!entry) {
      if (this.zongjiTables.has(tableId)) this.stats.fallbackEvents++;
      return false; // its table map went to zongji (or was filtered out there)
    }
    let decoded: DecodedEvent | null;
    try {
      decoded = readRowsEvent(packet.buffer, start, end, entry.plan);
    } catch (error) {
      this.fallBack(entry, `rows event unreadable here (${(error as Error).message})`, replay);
      return false;
    }
    if (!decoded) {
      this.fallBack(entry, 'rows event column count differs from its table map', replay);
      return false;
    }
    this.stats.nativeEvents++;
    if (decoded.kind === 'rows') decoded.bytes = end - start;
    try {
      options.onEvent(decoded);
    } catch (error) {
      options.onError(error as Error);
    }
    return true;
  }

  /** Leaves one rows event of a planned table to zongji: zongji must have seen its table map first. */
  private fallBack(entry: { plan: TablePlan; packet: Buffer; zongjiKnows: boolean }, reason: string, replay: (packet: Packet) => void): void {
    this.stats.fallbackEvents++;
    this.noteFallback(`${entry.plan.shape.schema}.${entry.plan.shape.table}`, reason);
    if (entry.zongjiKnows) return;
    entry.zongjiKnows = true;
    const saved = entry.packet;
    replay({ buffer: saved, offset: 0, end: saved.length, isEOF: () => false, isError: () => false });
  }

  private noteFallback(table: string, reason: string): void {
    if (this.stats.fallbackTables.get(table) === reason) return;
    this.stats.fallbackTables.set(table, reason);
    this.logger?.info(`binlog rows of ${table} are decoded by zongji, not natively: ${reason}`, { table, reason });
  }
}

const CONTROL = /^(BEGIN|COMMIT|ROLLBACK|XA )/;

/** A QUERY_EVENT (body at `body`) whose statement only delimits a transaction (MySQL writes BEGIN for every one). */
function isTransactionControl(buf: Buffer, body: number, end: number): boolean {
  const schemaLength = buf[body + 8];
  const statusLength = buf.readUInt16LE(body + 11);
  const statement = body + 13 + statusLength + schemaLength + 1;
  return statement < end && CONTROL.test(buf.toString('latin1', statement, Math.min(end, statement + 9)));
}
