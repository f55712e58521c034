import { DecodedEvent, RawRow } from '../binlog-decoder';
import { readRow } from './row-values';
import { TablePlan } from './table-map';

/** WRITE/UPDATE/DELETE_ROWS_EVENT v1 (MariaDB) and v2 (MySQL) → the operation; the v2 ones carry extra data. */
export const ROWS_EVENT_TYPES: Record<number, { op: 'insert' | 'update' | 'delete'; v2: boolean }> = {
  23: { op: 'insert', v2: false }, 24: { op: 'update', v2: false }, 25: { op: 'delete', v2: false },
  30: { op: 'insert', v2: true }, 31: { op: 'update', v2: true }, 32: { op: 'delete', v2: true },
};

/** MariaDB's compressed rows events (log_bin_compress=ON): left to zongji, which inflates them. */
export const COMPRESSED_ROWS_EVENT_TYPES = new Set([166, 167, 168, 169, 170, 171]);

export const EVENT_HEADER_BYTES = 19;

/** The table id of a rows event (the first 6 bytes of its body). */
export function rowsEventTableId(buf: Buffer, body: number): number {
  return buf.readUIntLE(body, 6);
}

/**
 * Decodes a rows event from its bytes: `start` is the event header, `end`
 * the end of the event before its checksum. Returns null when the event does
 * not fit the table's plan (a column count that differs from the table map):
 * the caller leaves it to zongji.
 */
export function readRowsEvent(buf: Buffer, start: number, end: number, plan: TablePlan): Extract<DecodedEvent, { kind: 'rows' }> | null {
  const type = ROWS_EVENT_TYPES[buf[start + 4]];
  const timestampMs = buf.readUInt32LE(start) * 1000;
  const length = buf.readUInt32LE(start + 9);
  const nextPosition = buf.readUInt32LE(start + 13);
  let at = start + EVENT_HEADER_BYTES + 6 + 2; // table id, flags
  if (type.v2) at += buf.readUInt16LE(at); // extra data, its length included
  let count = buf[at++];
  if (count >= 251) {
    if (count !== 252) return null;
    count = buf.readUInt16LE(at);
    at += 2;
  }
  const columns = plan.columns;
  if (count !== columns.length) return null;
  const bitmapBytes = (count + 7) >> 3;
  const present = buf.subarray(at, (at += bitmapBytes));
  const presentAfter = type.op === 'update' ? buf.subarray(at, (at += bitmapBytes)) : present;
  const rows: Array<{ before: RawRow | null; after: RawRow | null }> = [];
  while (at < end) {
    const first = readRow(buf, at, columns, present);
    at = first.next;
    if (type.op === 'update') {
      const second = readRow(buf, at, columns, presentAfter);
      at = second.next;
      rows.push({ before: first.row, after: second.row });
    } else rows.push(type.op === 'insert' ? { before: null, after: first.row } : { before: first.row, after: null });
  }
  if (at !== end) throw new RangeError(`rows event of ${plan.shape.schema}.${plan.shape.table} read ${at - end} bytes past its end`);
  const eventPosition = nextPosition > length ? nextPosition - length : undefined;
  // The common header: timestamp (4), type (1), server_id (4), ...
  const serverId = buf.readUInt32LE(start + 5);
  return { kind: 'rows', op: type.op, table: plan.shape, rows, timestampMs, ...(eventPosition !== undefined && { eventPosition }), serverId };
}
