import { PositionCodec } from '../../core/event/position';

/**
 * A place in a MySQL/MariaDB binary log: file + byte offset, totally ordered
 * by (file sequence number, offset). The GTID state at that place rides
 * alongside (MariaDB `0-1-42[,1-2-7]`, MySQL `uuid:1-42[,...]`): it names the
 * same place in a form another server of the replication topology
 * understands, but it plays no part in the ordering.
 *
 * Text form: `binlog.000042:1234`, or `binlog.000042:1234@0-1-42` with a GTID.
 */
export interface BinlogPosition {
  /** Binlog file name as the server reports it, e.g. `binlog.000042`. */
  file: string;
  /** Byte offset within the file. */
  offset: number;
  /** GTID state at this position, when known. */
  gtid?: string;
}

/** Offsets get 40 bits in a packed position (1 TiB per file); file sequence numbers the 23 above them. */
const OFFSET_BITS = 40n;
const MAX_OFFSET = (1n << OFFSET_BITS) - 1n;
/** Keeps packed positions below 2^63, so versions fit a signed 64-bit integer (Elasticsearch external versions). */
const MAX_SEQUENCE = (1n << 23n) - 1n;

/** The numeric extension of a binlog file name: `binlog.000042` → 42. */
export function fileSequence(file: string): number {
  const match = /\.(\d+)$/.exec(file);
  if (!match) throw new Error(`binlog file name "${file}" has no numeric extension (expected e.g. "binlog.000042")`);
  return Number(match[1]);
}

function baseName(file: string): string {
  return file.slice(0, file.lastIndexOf('.'));
}

export function compareBinlogPositions(a: BinlogPosition, b: BinlogPosition): number {
  if (baseName(a.file) !== baseName(b.file)) {
    throw new Error(`cannot order binlog positions of different binlog series: ${a.file} vs ${b.file} (was log_bin renamed?)`);
  }
  const bySequence = fileSequence(a.file) - fileSequence(b.file);
  if (bySequence !== 0) return Math.sign(bySequence);
  return Math.sign(a.offset - b.offset);
}

export function formatBinlogPosition(position: BinlogPosition): string {
  const place = `${position.file}:${position.offset}`;
  return position.gtid ? `${place}@${position.gtid}` : place;
}

/** GTID states contain digits, hex, `-`, `:` and `,` only (MySQL tags also letters and `_`). */
const GTID_STATE = /^[0-9A-Za-z_:,-]*$/;

export function parseBinlogPosition(text: string): BinlogPosition {
  const at = text.lastIndexOf('@');
  const hasGtid = at >= 0 && GTID_STATE.test(text.slice(at + 1));
  const place = hasGtid ? text.slice(0, at) : text;
  const colon = place.lastIndexOf(':');
  const file = place.slice(0, colon);
  const offsetText = place.slice(colon + 1);
  if (colon <= 0 || !/^\d+$/.test(offsetText) || !/\.\d+$/.test(file)) {
    throw new Error(`malformed binlog position "${text}": expected FILE:OFFSET[@GTID] like "binlog.000042:1234@0-1-42"`);
  }
  const position: BinlogPosition = { file, offset: Number(offsetText) };
  const gtid = hasGtid ? text.slice(at + 1) : '';
  if (gtid) position.gtid = gtid;
  return position;
}

export const binlogPositionCodec: PositionCodec<BinlogPosition> = {
  compare: compareBinlogPositions,
  serialize: formatBinlogPosition,
  parse: parseBinlogPosition,
};

/**
 * The position as one integer that orders like the position itself:
 * (file sequence << 40) | offset. Used as the position part of versions.
 * Limits: offsets below 2^40 (binlog files are at most a few GiB) and file
 * sequence numbers below 2^23 (8.3 million files), which keeps the result
 * below 2^63. A RESET MASTER (sequence back to 1) or a failover to a server
 * with lower numbers breaks the ordering: the source then re-snapshots under a
 * new source epoch (core/event/version.ts), which takes the top 4 of those 63
 * bits, so from epoch 1 on file sequence numbers must stay below 2^19.
 */
export function packBinlogPosition(position: Pick<BinlogPosition, 'file' | 'offset'>): bigint {
  const sequence = BigInt(fileSequence(position.file));
  const offset = BigInt(position.offset);
  if (sequence > MAX_SEQUENCE) throw new RangeError(`binlog file ${position.file}: sequence number above ${MAX_SEQUENCE} cannot be packed into a version`);
  if (offset < 0n || offset > MAX_OFFSET) throw new RangeError(`binlog offset ${position.offset} in ${position.file} does not fit in 40 bits`);
  return (sequence << OFFSET_BITS) | offset;
}
