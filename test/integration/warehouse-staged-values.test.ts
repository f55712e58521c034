import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyString, Row } from '../../core/event/change-event';
import { makeVersion } from '../../core/event/version';
import { createLogger } from '../../core/runtime/logger';
import { DeadLetterStore } from '../../sinks/shared/dead-letters';
import { warehouseSinkConfig } from '../../sinks/warehouse/config';
import { copyTextChunks } from '../../sinks/warehouse/copy-text';
import { DuckDbEngine } from '../../sinks/warehouse/duckdb';
import { SqlEngine } from '../../sinks/warehouse/engine';
import { PostgresEngine } from '../../sinks/warehouse/postgres';
import { WarehouseSink } from '../../sinks/warehouse/warehouse-sink';
import { makeEvent } from '../support/events';
import { PgServer, startPostgres, stopAll } from '../support/servers';
import { asRecords } from '../support/sink-history';

// Values that the staging paths (Postgres COPY text format, the DuckDB appender) must carry byte for byte.
const AWKWARD: Row[] = [
  { id: 1, text: 'tab\there, newline\nthere, cr\r, backslash \\ and \\N and \\t literally', empty: '', nothing: null, bytes: '\\x00ff5c0a09', doc: { s: 'a\tb\nc\\d"e', list: ['\\N', '', null] } },
  { id: 2, text: 'unicode: zoë ✓ 漢字 👩‍👩‍👧 e\u0301', empty: null, nothing: '', bytes: '\\x', doc: { emoji: '🦀', nested: { quote: "it's", zero: 0 } } },
  { id: 3, text: '\\', empty: '\t', nothing: '\n', bytes: '\\xdeadbeef', doc: [] },
];

for (const engineName of ['duckdb', 'postgres'] as const) {
  describe(`Warehouse staging carries values exactly (${engineName})`, function () {
    this.timeout(120_000);
    let pg: PgServer | null = null;
    let dir: string;
    let n = 0;
    let target: Record<string, unknown>;
    const open: WarehouseSink[] = [];

    before(async () => {
      if (engineName === 'postgres') pg = await startPostgres();
    });
    after(async () => {
      if (pg) await stopAll();
    });
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'tidewater-warehouse-values-'));
      n++;
      target = engineName === 'duckdb' ? { engine: 'duckdb', path: join(dir, 'w.duckdb') } : { engine: 'postgres', url: pg!.url, schema: `v${n}` };
    });
    afterEach(async () => {
      for (const sink of open.splice(0)) await sink.close();
      rmSync(dir, { recursive: true, force: true });
    });

    async function openSink(): Promise<WarehouseSink> {
      const sink = new WarehouseSink(warehouseSinkConfig.parse({ name: 'wh', type: 'warehouse', ...target }), { logger: createLogger('test', () => undefined), dataDir: dir }, new DeadLetterStore(dir, 'wh'));
      await sink.open();
      open.push(sink);
      return sink;
    }

    async function reading<T>(work: (engine: SqlEngine) => Promise<T>): Promise<T> {
      const engine = engineName === 'duckdb' ? new DuckDbEngine(target.path as string) : new PostgresEngine(pg!.url, target.schema as string);
      await engine.open();
      try {
        return await work(engine);
      } finally {
        await engine.close();
      }
    }

    /** Current rows (bookkeeping left out) by key, as JSON the engine renders. */
    async function currentRows(table: string): Promise<Map<string, Row>> {
      return reading(async (engine) => {
        const json = engineName === 'duckdb' ? 'to_json(t)::VARCHAR' : 'row_to_json(t)::text';
        const rows = await engine.query(`SELECT ${json} AS j FROM ${engine.table(table)} t WHERE NOT _cdc_deleted`);
        const out = new Map<string, Row>();
        for (const r of rows) {
          const { _cdc_version, _cdc_deleted, _cdc_synced_at, ...data } = JSON.parse(String(r.j)) as Row;
          out.set(String(data.id ?? `${data.a}|${data.b}`), data);
        }
        return new Map([...out].sort(([a], [b]) => (a < b ? -1 : 1)));
      });
    }

    /** History rows: key, version, and the after image as stored. */
    async function history(table: string): Promise<{ key: string; version: string; after: unknown }[]> {
      return reading(async (engine) => {
        const rows = await engine.query(`SELECT _cdc_key AS k, _cdc_version AS v, CAST(_cdc_after AS ${engineName === 'duckdb' ? 'VARCHAR' : 'text'}) AS a FROM ${engine.table(table)} ORDER BY _cdc_key, _cdc_version`);
        return rows.map((r) => ({ key: String(r.k), version: String(r.v), after: r.a === null ? null : JSON.parse(String(r.a)) }));
      });
    }

    it('writes tabs, newlines, backslashes, "\\N", NULL beside empty strings, unicode, bytea hex and JSON exactly, in the table and its history', async () => {
      const sink = await openSink();
      const events = AWKWARD.map((after, i) => makeEvent({ key: { id: after.id }, after, version: makeVersion(100n + BigInt(i), 1) }));
      await sink.write(asRecords(events));
      await sink.flush();
      assert.deepEqual(await currentRows('public__items'), new Map(AWKWARD.map((row) => [String(row.id), row])));
      assert.deepEqual(await history('public__items__changes'), events.map((e) => ({ key: keyString(e.key), version: e.source.version, after: e.after })));
    });

    it('keys with tabs, backslashes, colons and newlines: each row written once, updated in place and deleted by its key', async () => {
      const sink = await openSink();
      const keys = [{ a: 'x\ty', b: 'back\\slash' }, { a: 'co:lon', b: 'new\nline' }, { a: '\\N', b: '' }];
      const created = keys.map((key, i) => makeEvent({ table: 'pairs', key, after: { ...key, v: 1 }, version: makeVersion(10n, i + 1) }));
      const updated = keys.map((key, i) => makeEvent({ table: 'pairs', op: 'u', key, after: { ...key, v: 2 }, version: makeVersion(11n, i + 1) }));
      const deleted = makeEvent({ table: 'pairs', op: 'd', key: keys[2], version: makeVersion(12n, 1) });
      await sink.write(asRecords(created));
      await sink.flush();
      await sink.write(asRecords([...updated, deleted], 0, created.length));
      await sink.flush();
      assert.deepEqual(await currentRows('public__pairs'), new Map(keys.slice(0, 2).map((key) => [`${key.a}|${key.b}`, { ...key, v: 2 }])));
      assert.equal((await history('public__pairs__changes')).length, 7);
    });

    it('a batch holding one change twice (same key and version) keeps one history row; a replay adds none and a stale change overwrites nothing', async () => {
      const sink = await openSink();
      const v1 = makeEvent({ key: { id: 7 }, after: { id: 7, step: 1 }, version: makeVersion(20n, 1) });
      const v2 = makeEvent({ key: { id: 7 }, op: 'u', after: { id: 7, step: 2 }, version: makeVersion(21n, 1) });
      await sink.write(asRecords([v1, v2, v2, v1]));
      await sink.flush();
      await sink.write(asRecords([v2, v1], 0, 4));
      await sink.flush();
      assert.deepEqual(await currentRows('public__items'), new Map([['7', { id: 7, step: 2 }]]));
      assert.deepEqual((await history('public__items__changes')).map((h) => h.version), [v1.source.version, v2.source.version]);
    });
  });
}

describe('COPY text format', () => {
  it('escapes backslash, tab, newline and carriage return, writes NULL as \\N and an empty string as nothing', () => {
    const text = [...copyTextChunks([['a\tb', null, '', '\\N', 'x\r\ny\\'], ['✓', 'plain', null, '\\', '']])].join('');
    assert.equal(text, 'a\\tb\t\\N\t\t\\\\N\tx\\r\\ny\\\\\n✓\tplain\t\\N\t\\\\\t\n');
  });
});
