/**
 * Postgres COPY text format (https://www.postgresql.org/docs/current/sql-copy.html):
 * one line per row, fields split by tabs, NULL as \N, and a backslash, tab,
 * newline or carriage return inside a value escaped with a backslash. An empty
 * string stays empty (distinct from \N).
 */
const SPECIAL = /[\\\t\n\r]/;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

export function copyTextField(value: string | null): string {
  if (value === null) return '\\N';
  return SPECIAL.test(value) ? value.replace(/[\\\t\n\r]/g, (c) => ESCAPES[c]) : value;
}

/** The rows as COPY text, in chunks of about `chunkChars` characters (the stream's writes). */
export function* copyTextChunks(rows: readonly (readonly (string | null)[])[], chunkChars = 1 << 16): Generator<string> {
  let chunk = '';
  for (const row of rows) {
    chunk += row.map(copyTextField).join('\t') + '\n';
    if (chunk.length >= chunkChars) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}
