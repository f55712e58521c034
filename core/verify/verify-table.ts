import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { keyString } from '../event/change-event';
import { SinkReader, SourceRowReader } from './sink-reader';

export interface TableDifferences {
  table: string;
  rowsCompared: number;
  /** Key strings (keyString() of the key columns). */
  missing: string[];
  extra: string[];
  different: string[];
}

export interface VerifyTableOptions {
  source: SourceRowReader;
  sink: SinkReader;
  table: string;
  /** Rows per primary-key chunk (default 1000). */
  chunkSize?: number;
  /** What the sink keeps of a source row (its column projection), as a function of the row. */
  project(schema: string, table: string, row: Record<string, unknown>): Record<string, unknown>;
}

/**
 * Compares one table: source rows in primary-key chunks, each chunk's checksum
 * against the checksum of the sink's documents for the same keys, rows diffed
 * only inside chunks whose checksums differ; then the sink's keys are scanned
 * for rows the source no longer has. Memory stays bounded by the chunk size.
 */
export async function verifyTable(options: VerifyTableOptions): Promise<TableDifferences> {
  const { source, sink, table } = options;
  const dot = table.indexOf('.');
  const [schema, name] = [table.slice(0, dot), table.slice(dot + 1)];
  const key = await source.primaryKey(table);
  const result: TableDifferences = { table, rowsCompared: 0, missing: [], extra: [], different: [] };
  let afterKey: unknown[] | null = null;
  for (;;) {
    const { rows, lastKey } = await source.chunk(table, afterKey, options.chunkSize ?? 1000);
    if (rows.length === 0) break;
    const keys = rows.map((row) => keyString(Object.fromEntries(key.map((c) => [c, row[c]]))));
    const expected = rows.map((row) => options.project(schema, name, row));
    const actual = await sink.rows(schema, name, keys);
    result.rowsCompared += rows.length;
    if (checksum(expected) !== checksum(actual)) {
      keys.forEach((k, i) => {
        if (actual[i] === null) result.missing.push(k);
        else if (!isDeepStrictEqual(normalize(actual[i]), normalize(expected[i]))) result.different.push(k);
      });
    }
    afterKey = lastKey;
    if (rows.length < (options.chunkSize ?? 1000)) break;
  }
  await sink.scanKeys(schema, name, async (keys) => {
    const present = await source.rowsByKey(table, keys);
    for (const k of keys) if (!present.has(k)) result.extra.push(k);
  });
  return result;
}

function checksum(rows: Array<Record<string, unknown> | null>): string {
  const hash = createHash('sha256');
  for (const row of rows) hash.update(row === null ? '\u0000' : JSON.stringify(normalize(row))).update('\n');
  return hash.digest('hex');
}

/** Key order does not matter to a reader; JSON round trip makes both sides the same kinds of values. */
function normalize(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalize);
  if (value && typeof value === 'object') return Object.fromEntries(Object.keys(value).sort().map((k) => [k, normalize((value as Record<string, unknown>)[k])]));
  return value;
}
