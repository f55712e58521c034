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
