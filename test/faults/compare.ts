// The verdict's comparison: every source row (read and decoded as the source
// decodes it, through cdc verify's readers) against every sink, row by row:
// Redis by GET of every key of the table's prefix, Elasticsearch by the test
// server's documents, the warehouse by its current-state table (rows not
// _cdc_deleted); plus duplicate changes in the warehouse history.
import { isDeepStrictEqual } from 'node:util';
import Redis from 'ioredis';
import { keyString } from '../../core/event/change-event';
import { MysqlSourceRowReader } from '../../connectors/mysql/verify-reader';
import { PgSourceRowReader } from '../../connectors/postgres/verify-reader';
import { SourceRowReader } from '../../core/verify/sink-reader';
import { DuckDbEngine } from '../../sinks/warehouse/duckdb';
import { SqlEngine } from '../../sinks/warehouse/engine';
import { PostgresEngine } from '../../sinks/warehouse/postgres';
import { Pipeline } from './pipeline';

export interface SinkComparison {
  sink: string;
  compared: number;
  missing: number;
  different: number;
  extra: number;
  duplicates: number;
  /** The first few differences: table, key, expected vs got. */
  examples: string[];
}

type Rows = Map<string, Record<string, unknown>>;

const BOOKKEEPING = /^_cdc_/;

/** Source rows of a table, key string → row as JSON values (what a sink should hold). */
async function sourceRows(reader: SourceRowReader, table: string): Promise<Rows> {
  const key = await reader.primaryKey(table);
  const rows: Rows = new Map();
  for (let after: unknown[] | null = null; ;) {
    const chunk = await reader.chunk(table, after, 5000);
    for (const row of chunk.rows) rows.set(keyString(Object.fromEntries(key.map((c) => [c, row[c]]))), JSON.parse(JSON.stringify(row)));
    if (chunk.rows.length < 5000 || !chunk.lastKey) break;
    after = chunk.lastKey;
  }
  return rows;
}

async function redisRows(redis: Redis, prefix: string): Promise<Rows> {
  const rows: Rows = new Map();
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 5000);
    cursor = next;
    keys.push(...found);
  } while (cursor !== '0');
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000);
    const values = await redis.mget(batch);
    batch.forEach((k, j) => { if (values[j] !== null) rows.set(k.slice(prefix.length), JSON.parse(values[j]!)); });
  }
  return rows;
}

/**
 * The warehouse's current rows, with values as text (its columns are typed: compare what a reader reads),
 * and the rows beyond the first of a key (a reader sees the key twice: counted as extra).
 */
async function warehouseRows(engine: SqlEngine, table: string, keyColumns: string[]): Promise<{ rows: Rows; twice: string[] } | null> {
  if (!(await engine.columns(table))) return null;
  const json = engine instanceof DuckDbEngine ? 'to_json(t)::VARCHAR' : 'row_to_json(t)::text';
  const rows: Rows = new Map();
  const twice: string[] = [];
  for (const { j } of await engine.query(`SELECT ${json} AS j FROM ${engine.table(table)} t WHERE NOT _cdc_deleted`)) {
    const row = JSON.parse(j as string) as Record<string, unknown>;
    for (const column of Object.keys(row)) if (BOOKKEEPING.test(column)) delete row[column];
    const key = keyString(Object.fromEntries(keyColumns.map((c) => [c, row[c]])));
    if (rows.has(key)) twice.push(`${key} (also ${JSON.stringify(row)})`);
    else rows.set(key, row);
  }
  return { rows, twice };
}

/** Changes present twice in the history (it must hold each (key, version) once). */
async function historyDuplicates(engine: SqlEngine, changes: string): Promise<number> {
  if (!(await engine.columns(changes))) return 0;
  const [row] = await engine.query(`SELECT count(*) - count(DISTINCT _cdc_key || '|' || _cdc_version) AS d FROM ${engine.table(changes)}`);
  return Number(row.d);
}

const asText = (value: unknown): unknown => (value === null || value === undefined ? null : typeof value === 'object' ? JSON.stringify(value) : String(value));

/**
 * The warehouse holds typed columns (a BIGINT reads back as a number where the
 * source sent a string) and creates a column only once a non-null value came:
 * compare values as text, an absent column as null.
 */
function sameAsText(expected: Record<string, unknown>, got: Record<string, unknown>): boolean {
  const columns = new Set([...Object.keys(expected), ...Object.keys(got)]);
  return [...columns].every((c) => asText(expected[c]) === asText(got[c]));
}

function diff(into: SinkComparison, table: string, expected: Rows, actual: Rows, same: (a: Record<string, unknown>, b: Record<string, unknown>) => boolean): void {
  const note = (text: string) => { if (into.examples.length < 5) into.examples.push(text.slice(0, 400)); };
  for (const [key, row] of expected) {
    into.compared++;
    const got = actual.get(key);
    if (!got) { into.missing++; note(`${into.sink} ${table}:${key} missing (source has ${JSON.stringify(row)})`); }
    else if (!same(row, got)) { into.different++; note(`${into.sink} ${table}:${key} expected ${JSON.stringify(row)} got ${JSON.stringify(got)}`); }
  }
  for (const [key, got] of actual) {
    if (!expected.has(key)) { into.extra++; note(`${into.sink} ${table}:${key} extra (sink has ${JSON.stringify(got)})`); }
  }
}

/** Compares every sink of the pipeline with its source; the service must be stopped (DuckDB is single-process). */
export async function compareAll(p: Pipeline): Promise<SinkComparison[]> {
  const reader: SourceRowReader = p.source === 'postgres'
    ? new PgSourceRowReader(p.sourceUrl, p.tables)
    : new MysqlSourceRowReader({ name: p.sourceName, url: p.sourceUrl, tables: p.tables });
  const results = new Map(p.sinks.map((sink) => [sink, { sink, compared: 0, missing: 0, different: 0, extra: 0, duplicates: 0, examples: [] } as SinkComparison]));
  const redis = new Redis(p.lab.redis.url, { maxRetriesPerRequest: 3 });
  const engines: [string, SqlEngine][] = [['warehouse', new DuckDbEngine(p.duckdbPath)]];
  if (p.options.postgresWarehouse) engines.push(['pgwarehouse', new PostgresEngine(p.lab.warehousePg!.url, p.name)]);
  try {
    for (const [, engine] of engines) await engine.open();
    for (const full of p.tables) {
      const table = full.slice(full.indexOf('.') + 1);
      const expected = await sourceRows(reader, full);
      const keyColumns = await reader.primaryKey(full);
      diff(results.get('cache')!, full, expected, await redisRows(redis, `${p.prefix}${full}:`), isDeepStrictEqual);
      const docs = p.lab.es.documents(`${p.indexPrefix}${full}`.toLowerCase()) as unknown as Rows;
      diff(results.get('search')!, full, expected, docs, isDeepStrictEqual);
      for (const [sink, engine] of engines) {
        const found = await warehouseRows(engine, `${p.schema}__${table}`, keyColumns);
        const result = results.get(sink)!;
        diff(result, full, expected, found?.rows ?? new Map(), sameAsText);
        result.extra += found?.twice.length ?? 0;
        for (const row of found?.twice.slice(0, Math.max(0, 5 - result.examples.length)) ?? []) result.examples.push(`${sink} ${full}:${row} held twice in the current table`.slice(0, 400));
        results.get(sink)!.duplicates += await historyDuplicates(engine, `${p.schema}__${table}__changes`);
      }
    }
  } finally {
    redis.disconnect();
    await reader.close();
    for (const [, engine] of engines) await engine.close().catch(() => undefined);
  }
  return [...results.values()];
}
