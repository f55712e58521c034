/**
 * Postgres `COPY ... TO STDOUT` text format, parsed as a stream: rows end at
 * a newline byte, fields are split by tabs, `\N` alone is NULL, and a
 * backslash escapes the rest (\b \f \n \r \t \v \\, octal \ooo, hex \xhh, any
 * other character stands for itself). A literal newline or tab inside a value
 * is always escaped, so raw 0x0A and 0x09 bytes only ever separate; and they
 * never occur inside a multi-byte UTF-8 character, so cutting the byte stream
 * at a newline never splits a character.
 *
 * Each field comes out as the exact text the same query returns over the
 * ordinary protocol (the type's output function), or null.
 */
export class CopyTextParser {
  private pending: Buffer | undefined;

  constructor(private readonly columns: number, private readonly onRow: (fields: (string | null)[]) => void) {}

  /** Parses every complete row in `chunk` (plus what an earlier chunk left unfinished). */
  push(chunk: Buffer): void {
    const end = chunk.lastIndexOf(0x0a);
    if (end < 0) {
      this.pending = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
      return;
    }
    // The complete rows, their last newline included, decoded once; fields are slices of that one string.
    const head = this.pending ? Buffer.concat([this.pending, chunk.subarray(0, end + 1)]) : chunk.subarray(0, end + 1);
    this.pending = end + 1 < chunk.length ? chunk.subarray(end + 1) : undefined;
    this.rows(head.toString('utf8'));
  }

  /** Ends the stream: a row without its newline means the copy was cut short. */
  end(): void {
    if (this.pending && this.pending.length > 0) {
      throw new Error(`COPY output ended in the middle of a row (${this.pending.length} bytes without a newline); the connection was probably cut — the chunk is read again on retry`);
    }
  }

  /** One pass over rows that each end with a newline: a field ends at a tab or a newline, and only a field with a backslash needs more work. */
  private rows(text: string): void {
    const columns = this.columns;
    const length = text.length;
    let row: (string | null)[] = new Array(columns);
    let column = 0;
    let start = 0;
    let lineStart = 0;
    let escaped = false;
    for (let i = 0; i < length; i++) {
      const c = text.charCodeAt(i);
      if (c > 0x5c) continue;
      if (c === 0x09 || c === 0x0a) {
        if (column < columns) row[column] = escaped ? escapedField(text.slice(start, i)) : text.slice(start, i);
        column++;
        start = i + 1;
        escaped = false;
        if (c === 0x0a) {
          if (column !== columns) {
            throw new Error(`COPY row has ${column} fields where ${columns} columns were described: ${JSON.stringify(text.slice(lineStart, Math.min(i, lineStart + 200)))}`);
          }
          this.onRow(row);
          row = new Array(columns);
          column = 0;
          lineStart = i + 1;
        }
      } else if (c === 0x5c) escaped = true;
    }
  }
}

/** A field with a backslash in it: `\N` alone is NULL, anything else is unescaped. */
function escapedField(text: string): string | null {
  return text === '\\N' ? null : unescapeCopyText(text);
}

const SIMPLE: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

/** Undoes COPY's text escaping of one field (the field is not `\N`). */
export function unescapeCopyText(text: string): string {
  // Octal and hex escapes name bytes, which may form multi-byte characters together: decode those at byte level.
  if (/\\(?:[0-7]|x[0-9a-fA-F])/.test(text)) return unescapeBytes(text);
  return text.replace(/\\(.?)/gs, (_, c: string) => SIMPLE[c] ?? c); // a lone backslash at the end gives ''
}

function unescapeBytes(text: string): string {
  const input = Buffer.from(text, 'utf8');
  const out = Buffer.allocUnsafe(input.length);
  let o = 0;
  for (let i = 0; i < input.length; i++) {
    const b = input[i];
    if (b !== 0x5c) {
      out[o++] = b;
      continue;
    }
    if (i + 1 >= input.length) break; // a lone backslash at the end is dropped, as COPY FROM does
    const c = input[++i];
    if (c >= 0x30 && c <= 0x37) {
      let value = c - 0x30;
      for (let n = 0; n < 2 && i + 1 < input.length && input[i + 1] >= 0x30 && input[i + 1] <= 0x37; n++) value = value * 8 + (input[++i] - 0x30);
      out[o++] = value & 0xff;
    } else if (c === 0x78 && i + 1 < input.length && isHex(input[i + 1])) {
      let value = hexValue(input[++i]);
      if (i + 1 < input.length && isHex(input[i + 1])) value = value * 16 + hexValue(input[++i]);
      out[o++] = value;
    } else {
      const simple = SIMPLE[String.fromCharCode(c)];
      out[o++] = simple ? simple.charCodeAt(0) : c;
    }
  }
  return out.subarray(0, o).toString('utf8');
}

function isHex(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
}

function hexValue(b: number): number {
  return b <= 0x39 ? b - 0x30 : (b | 0x20) - 0x61 + 10;
}
