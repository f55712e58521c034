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
  /** The source's primary key. */
  keyColumns: string[];
  /** Per extra key, the stamp the sink held it at when the source was (re)read without it: what a repair deletes it under. */
  extraStamps: Map<string, string>;
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
  const [schema, name] = splitTable(table);
  const key = await source.primaryKey(table);
  const result: TableDifferences = { table, rowsCompared: 0, missing: [], extra: [], different: [], keyColumns: key, extraStamps: new Map() };
  const chunkSize = options.chunkSize ?? 1000;
  let afterKey: unknown[] | null = null;
  for (;;) {
    const { rows, lastKey } = await source.chunk(table, afterKey, chunkSize);
    if (rows.length === 0) break;
    const found = await compareChunk(sink, schema, name, key, rows, options.project);
    result.rowsCompared += rows.length;
    result.missing.push(...found.missing);
    result.different.push(...found.different);
    afterKey = lastKey;
    if (rows.length < chunkSize) break;
  }
  await sink.scanKeys(schema, name, key, async (keys) => {
    const present = await source.rowsByKey(table, keys);
    const candidates = keys.filter((k) => !present.has(k));
    if (candidates.length === 0) return;
    // The stamp first, the source again after: a row the sink holds at this stamp
    // was written before a source that (now still) lacks the key, so deleting it
    // under this stamp cannot remove a newer write (see SinkReader.deleteKeys).
    const stamps = await sink.versions(schema, name, key, candidates);
    const stillPresent = await source.rowsByKey(table, candidates);
    candidates.forEach((k, i) => {
      if (stillPresent.has(k) || stamps[i] === null) return;
      result.extra.push(k);
      result.extraStamps.set(k, stamps[i]!);
    });
  });
  return result;
}

/** One chunk of source rows against the sink's rows for the same keys: keys missing from the sink, keys held differently. */
export async function compareChunk(
  sink: SinkReader, schema: string, table: string, keyColumns: readonly string[], rows: ReadonlyArray<Record<string, unknown>>,
  project: (schema: string, table: string, row: Record<string, unknown>) => Record<string, unknown>,
): Promise<{ keys: string[]; missing: string[]; different: string[] }> {
  const keys = rows.map((row) => rowKey(keyColumns, row));
  const expected = rows.map((row) => project(schema, table, row));
  const actual = await sink.rows(schema, table, keyColumns, keys);
  const out = { keys, missing: [] as string[], different: [] as string[] };
  if (checksum(expected) === checksum(actual)) return out;
  keys.forEach((k, i) => {
    if (actual[i] === null) out.missing.push(k);
    else if (!sameRow(actual[i], expected[i])) out.different.push(k);
  });
  return out;
}

/** Whether a sink row equals a (projected) source row, as a reader sees them. */
export function sameRow(actual: Record<string, unknown> | null, expected: Record<string, unknown> | null): boolean {
  if (actual === null || expected === null) return actual === expected;
  return isDeepStrictEqual(normalize(actual), normalize(expected));
}

export function rowKey(keyColumns: readonly string[], row: Record<string, unknown>): string {
  return keyString(Object.fromEntries(keyColumns.map((c) => [c, row[c]])));
}

export function splitTable(table: string): [string, string] {
  const dot = table.indexOf('.');
  return [table.slice(0, dot), table.slice(dot + 1)];
}

function checksum(rows: Array<Record<string, unknown> | null>): string {
  const hash = createHash('sha256');
  for (const row of rows) hash.update(row === null ? '\u0000' : JSON.stringify(normalize(row))).update('\n');
  return hash.digest('hex');
}

/**
 * Key order does not matter to a reader; JSON round trip makes both sides the
 * same kinds of values. A column holding null and a column left out read the
 * same (a warehouse table has a column for every column it ever saw, null in
 * rows that have none; a document may leave it out).
 */
function normalize(value: unknown, top = true): unknown {
  if (Array.isArray(value)) return value.map((v) => normalize(v, false));
  if (value && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record).sort().filter((k) => !top || (record[k] !== null && record[k] !== undefined));
    return Object.fromEntries(keys.map((k) => [k, normalize(record[k], false)]));
  }
  return value;
}
