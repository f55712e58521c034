import { randomBytes } from 'node:crypto';

/** String values at least this long are copied into the frame directly instead of through JSON.stringify's output. */
export const LARGE_STRING_CHARS = 1024 * 1024;

/** Characters JSON must escape, and surrogates (a lone one is escaped): such strings take the ordinary path. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
/** Marks where a large string goes; the nonce makes a collision with real data practically impossible. */
const MARK = `@cdc-large-${randomBytes(8).toString('hex')}-`;

/**
 * The JSON text of `value` as pieces to write one after the other: the text
 * around large strings, and the large strings themselves (already valid JSON
 * string content once quoted). JSON.stringify alone would make one more copy
 * of a 50 MB value as a 50 MB string before the frame copies it again.
 */
export function jsonPieces(value: unknown): { pieces: string[]; bytes: number } {
  const large: string[] = [];
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'string' && v.length >= LARGE_STRING_CHARS && !NEEDS_ESCAPE.test(v)) {
      large.push(v);
      return `${MARK}${large.length - 1}`;
    }
    return v;
  });
  if (large.length === 0) return { pieces: [text], bytes: Buffer.byteLength(text, 'utf8') };
  const pieces: string[] = [];
  let rest = text;
  for (let i = 0; i < large.length; i++) {
    const mark = `"${MARK}${i}"`;
    const at = rest.indexOf(mark);
    pieces.push(rest.slice(0, at + 1), large[i]);
    rest = rest.slice(at + mark.length - 1);
  }
  pieces.push(rest);
  return { pieces, bytes: pieces.reduce((sum, p) => sum + Buffer.byteLength(p, 'utf8'), 0) };
}

/** Whether an object holds (as a direct member) a string of LARGE_STRING_CHARS or more: its JSON is best written in jsonPieces(). */
export function holdsLargeString(row: Record<string, unknown>): boolean {
  for (const key in row) {
    const value = row[key];
    if (typeof value === 'string' && value.length >= LARGE_STRING_CHARS) return true;
  }
  return false;
}

/** The UTF-8 bytes of `value`'s JSON, written piece by piece (jsonPieces()): no whole-JSON string on the way. */
export function jsonBytes(value: unknown): Buffer {
  const { pieces, bytes } = jsonPieces(value);
  return utf8Of(pieces, bytes);
}

/** The UTF-8 bytes of `pieces` one after the other (`bytes`: their total, when known), without joining them into a string. */
export function utf8Of(pieces: readonly string[], bytes = pieces.reduce((sum, p) => sum + Buffer.byteLength(p, 'utf8'), 0)): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (const piece of pieces) at += out.write(piece, at, 'utf8');
  return out;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * JSON.parse of `buf[start, end)` (UTF-8). For a large payload, string values
 * of LARGE_STRING_CHARS bytes or more without escapes are decoded straight
 * from the buffer and put back by a reviver, instead of decoding the whole
 * payload to one string first (one 50 MB copy fewer per huge row).
 */
export function parseJsonBuffer(buf: Buffer, start: number, end: number): unknown {
  if (end - start < LARGE_STRING_CHARS) return JSON.parse(buf.toString('utf8', start, end));
  const large: string[] = [];
  const skeleton: string[] = [];
  let copyFrom = start;
  for (let pos = start; ; ) {
    const open = buf.indexOf(QUOTE, pos);
    if (open < 0 || open >= end) break;
    let close = open + 1;
    for (;;) {
      close = buf.indexOf(QUOTE, close);
      if (close < 0 || close >= end) return JSON.parse(buf.toString('utf8', start, end)); // not well formed: let JSON.parse say so
      let backslashes = 0;
      while (buf[close - 1 - backslashes] === BACKSLASH) backslashes++;
      if (backslashes % 2 === 0) break;
      close++;
    }
    let after = close + 1;
    while (after < end && (buf[after] === 0x20 || buf[after] === 0x0a || buf[after] === 0x0d || buf[after] === 0x09)) after++;
    const isKey = buf[after] === 0x3a;
    if (!isKey && close - open - 1 >= LARGE_STRING_CHARS && buf.subarray(open + 1, close).indexOf(BACKSLASH) < 0) {
      skeleton.push(buf.toString('utf8', copyFrom, open), JSON.stringify(`${MARK}${large.length}`));
      large.push(buf.toString('utf8', open + 1, close));
      copyFrom = close + 1;
    }
    pos = close + 1;
  }
  if (large.length === 0) return JSON.parse(buf.toString('utf8', start, end));
  skeleton.push(buf.toString('utf8', copyFrom, end));
  return JSON.parse(skeleton.join(''), (_key, v: unknown) =>
    typeof v === 'string' && v.startsWith(MARK) ? large[Number(v.slice(MARK.length))] : v,
  );
}
