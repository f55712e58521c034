import { PositionCodec } from '../../core/event/position';

/** A Postgres log sequence number: a 64-bit WAL byte position, text form `X/Y`. */
export type Lsn = bigint;

export const ZERO_LSN: Lsn = 0n;

export function parseLsn(text: string): Lsn {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!match) throw new Error(`malformed Postgres LSN "${text}": expected hex "X/Y" like "0/16B3748"`);
  return (BigInt('0x' + match[1]) << 32n) | BigInt('0x' + match[2]);
}

export function formatLsn(lsn: Lsn): string {
  if (lsn < 0n || lsn > 0xffffffffffffffffn) throw new RangeError(`LSN ${lsn} does not fit in 64 bits`);
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

export function compareLsn(a: Lsn, b: Lsn): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export const lsnCodec: PositionCodec<Lsn> = { compare: compareLsn, serialize: formatLsn, parse: parseLsn };
