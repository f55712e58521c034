import { randomBytes } from 'node:crypto';

/**
 * JSON text with exact 64-bit integers: Debezium's JsonConverter writes INT64
 * values as plain JSON numbers, which a JS number cannot hold beyond 2^53.
 * Row values that must keep every digit are ExactNumber; jsonText() writes
 * them as bare digits and everything else as JSON.stringify does.
 *
 * How: JSON.stringify (fast, native) writes an ExactNumber as a marker string
 * (its toJSON), and the markers are then replaced by the digits. The marker
 * starts with a NUL and a per-process random tag, so no real string value
 * can be taken for one.
 */
const TAG = `\u0000x${randomBytes(6).toString('hex')}`;
const MARKER = new RegExp(`"\\\\u0000x${TAG.slice(2)}(-?\\d+)"`, 'g');

export class ExactNumber {
  constructor(readonly digits: string) {}

  toJSON(): string {
    return TAG + this.digits;
  }
}

/** An integer as a JSON number: a plain number when exact, else its digits. */
export function integerValue(value: bigint): number | ExactNumber {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : new ExactNumber(value.toString());
}

export function jsonText(value: unknown): string {
  const text = JSON.stringify(value) ?? 'null';
  return text.includes('\\u0000x') ? text.replace(MARKER, '$1') : text;
}
