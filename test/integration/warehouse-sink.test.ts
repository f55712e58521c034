import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChangeEvent, keyString, Row } from '../../core/event/change-event';
import { makeVersion } from '../../core/event/version';
import { Metrics } from '../../core/http/metrics';
import { FileLog } from '../../core/log/file-log';
import { SinkRunner } from '../../core/runtime/sink-runner';
import { createLogger } from '../../core/runtime/logger';
import { DeadLetterStore } from '../../sinks/shared/dead-letters';
import { warehouseSinkConfig } from '../../sinks/warehouse/config';
import { DuckDbEngine } from '../../sinks/warehouse/duckdb';
import { SqlEngine } from '../../sinks/warehouse/engine';
import { PostgresEngine } from '../../sinks/warehouse/postgres';
import { WarehouseSink } from '../../sinks/warehouse/warehouse-sink';
import { DEFAULT_MAX_BATCH } from '../../core/log/change-log';
import { makeEvent } from '../support/events';
import { packageRoot } from '../support/kafka';
import { partitionedHistory } from '../support/partitioned-history';
import { PgServer, startPostgres, stopAll } from '../support/servers';
import { asRecords, changeHistory, finalRows, randomBatches, seeded, shuffleWithinKeyOrder } from '../support/sink-history';
import { WriterSpec } from '../support/warehouse-writer';

const quietLogger = createLogger('test', () => undefined);
const sorted = <V>(rows: Map<string, V>) => new Map([...rows].sort(([a], [b]) => (a < b ? -1 : 1)));
const KEYS: Record<string, string[]> = { items: ['id'], order_lines: ['order_id', 'line'], ghosts: ['id'] };

/** Rows without null values (a column the row never had reads as NULL in a table). */
function withoutNulls(row: Row): Row {
  return Object.fromEntries(Object.entries(row).filter(([, v]) => v !== null));
}

for (const engineName of ['duckdb', 'postgres'] as const) {
  describe(`Warehouse sink (${engineName})`, function () {
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
    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), 'tidewater-warehouse-'));
      n++;
      target = engineName === 'duckdb' ? { engine: 'duckdb', path: join(dir, 'w.duckdb') } : { engine: 'postgres', url: pg!.url, schema: `t${n}` };
    });
    afterEach(async () => {
      for (const sink of open.splice(0)) await sink.close();
      rmSync(dir, { recursive: true, force: true });
    });

    async function openSink(extra: Record<string, unknown> = {}, generation?: number, metrics?: Metrics): Promise<WarehouseSink> {
      const config = warehouseSinkConfig.parse({ name: 'wh', type: 'warehouse', ...target, ...extra });
      const sink = new WarehouseSink(config, { logger: quietLogger, dataDir: dir }, new DeadLetterStore(dir, 'wh', metrics));
      if (generation) sink.useGeneration(generation);
      await sink.open();
      open.push(sink);
      return sink;
    }

    /** Runs `work` with a reading connection of its own (closed after, so the DuckDB file is released). */
    async function reading<T>(work: (engine: SqlEngine) => Promise<T>): Promise<T> {
      const engine = engineName === 'duckdb' ? new DuckDbEngine(target.path as string) : new PostgresEngine(pg!.url, target.schema as string);
      await engine.open();
      try {
        return await work(engine);
      } finally {
        await engine.close();
      }
    }

    async function rowsOf(engine: SqlEngine, table: string, where = 'NOT _cdc_deleted'): Promise<Row[]> {
      const json = engineName === 'duckdb' ? 'to_json(t)::VARCHAR' : 'row_to_json(t)::text';
      const rows = await engine.query(`SELECT ${json} AS j FROM ${engine.table(table)} t WHERE ${where}`);
      return rows.map((r) => JSON.parse(String(r.j)) as Row);
    }

    /** What readers see in the current-state tables: `table:key` → row (bookkeeping and NULLs left out). */
    async function currentRows(tables = ['items', 'order_lines']): Promise<Map<string, Row>> {
      return reading(async (engine) => {
        const out = new Map<string, Row>();
        for (const table of tables) {
          if (!(await engine.columns(`public__${table}`))) continue;
          for (const row of await rowsOf(engine, `public__${table}`)) {
            const { _cdc_version, _cdc_deleted, _cdc_synced_at, ...data } = row;
            out.set(`${table}:${KEYS[table].map((k) => data[k]).join(':')}`, withoutNulls(data));
          }
        }
        return sorted(out);
      });
    }

    const expectedRows = (events: ChangeEvent[]) => sorted(new Map([...finalRows(events)].map(([k, row]) => [k, withoutNulls(row)])));

    /** `table key version` of every row of the history tables. */
    async function historyEntries(tables = ['items', 'order_lines']): Promise<string[]> {
      return reading(async (engine) => {
        const out: string[] = [];
        for (const table of tables) {
          if (!(await engine.columns(`public__${table}__changes`))) continue;
          const rows = await engine.query(`SELECT _cdc_key AS k, _cdc_version AS v FROM ${engine.table(`public__${table}__changes`)}`);
          out.push(...rows.map((r) => `${table} ${r.k} ${r.v}`));
        }
        return out.sort();
      });
    }
    const distinctChanges = (events: ChangeEvent[]) => [...new Set(events.map((e) => `${e.source.table} ${keyString(e.key)} ${e.source.version}`))].sort();

    it('converges to the source through truncates and unchanged TOAST columns: replayed once, twice, and shuffled in random batches', async () => {
      const sink = await openSink();
      const events = changeHistory({ changes: 500, truncateAt: 0.5 });
      await sink.write(asRecords(events));
      await sink.flush();
      assert.deepEqual(await currentRows(), expectedRows(events));
      await sink.write(asRecords(events, 1));
      await sink.flush();
      const random = seeded(13);
      for (const batch of randomBatches(asRecords(shuffleWithinKeyOrder(events, random), 2), 70, random)) {
        await sink.write(batch);
        await sink.flush();
      }
      assert.deepEqual(await currentRows(), expectedRows(events), 'replays and reorderings change nothing');
      assert.deepEqual(await historyEntries(), distinctChanges(events), 'the history holds each change exactly once');
    });

    it('creates typed tables from the rows, widens a column when a value does not fit, adds columns, and keeps values exact', async () => {
      const sink = await openSink();
      const first = { id: 1, n: 5, amount: '12345678901234567890.12', ratio: 0.30000000000000004, ok: true, doc: { big: 12345678901234567890, f: 1.0000000000000002 } };
      await sink.write(asRecords([makeEvent({ key: { id: 1 }, after: first, version: makeVersion(1n, 1) })]));
      await sink.flush();
      const second = { id: 2, n: 1.5, amount: '1', ratio: 1, ok: false, doc: ['x'], added: 'new column' };
      await sink.write(asRecords([makeEvent({ key: { id: 2 }, after: second, version: makeVersion(2n, 1) })], 0, 1));
      await sink.flush();
      const types = await reading(async (engine) => Object.fromEntries((await engine.columns('public__items'))!));
      const expectedTypes = engineName === 'duckdb'
        ? { id: 'BIGINT', n: 'DOUBLE', amount: 'VARCHAR', ratio: 'DOUBLE', ok: 'BOOLEAN', doc: 'JSON', added: 'VARCHAR' }
        : { id: 'bigint', n: 'double precision', amount: 'text', ratio: 'double precision', ok: 'boolean', doc: 'jsonb', added: 'text' };
      for (const [column, type] of Object.entries(expectedTypes)) assert.equal(types[column], type, `type of ${column}`);
      assert.deepEqual(await currentRows(['items']), new Map<string, Row>([['items:1', first], ['items:2', second]]));
    });

    it('sends a row whose value does not cast to its declared type to the dead-letter file, counts it, and applies the rest', async () => {
      const metrics = new Metrics();
      const sink = await openSink({ tableOptions: { 'public.items': { columnTypes: { price: 'DECIMAL(20,2)' } } } }, undefined, metrics);
      const good = [1, 2].map((id) => makeEvent({ key: { id }, after: { id, price: `${id}0.50` }, version: makeVersion(10n, id) }));
      const bad = makeEvent({ key: { id: 3 }, after: { id: 3, price: 'lots' }, version: makeVersion(10n, 3) });
      await sink.write(asRecords([good[0], bad, good[1]]));
      await sink.flush();
      assert.deepEqual(await currentRows(['items']), new Map([['items:1', { id: 1, price: 10.5 }], ['items:2', { id: 2, price: 20.5 }]]));
      const letters = await new DeadLetterStore(dir, 'wh').read();
      assert.equal(letters.length, 1);
      assert.deepEqual([letters[0].table, letters[0].key, letters[0].event.after], ['public.items', '3', { id: 3, price: 'lots' }]);
      assert.match(letters[0].reason, /does not cast to its declared column type in public__items \(price DECIMAL\(20,2\)\)/);
      assert.match(await metrics.registry.metrics(), /cdc_sink_dead_letters_total\{sink="wh",table="public.items"\} 1/);
      assert.deepEqual(await historyEntries(['items']), ['items 1 ' + good[0].source.version, 'items 2 ' + good[1].source.version, 'items 3 ' + bad.source.version].sort());
    });

    it('stores the log offsets with the data: flushes from concurrent partitions group into transactions that record each partition', async () => {
      const sink = await openSink();
      const logs = partitionedHistory(400, 4);
      await Promise.all(logs.map(async (records) => {
        for (let i = 0; i < records.length; i += 37) {
          await sink.write(records.slice(i, i + 37));
          await sink.flush();
        }
      }));
      assert.deepEqual(await sink.storedOffsets(), new Map(logs.map((records, p) => [p, records.length])));
      const events = changeHistory({ changes: 400, seed: 77, keysPerTable: 40, truncateAt: 0.6 });
      assert.deepEqual(await currentRows(), expectedRows(events));
    });

    it('builds a new generation beside the live tables and switches readers to it in one transaction', async () => {
      const live = await openSink();
      const events = changeHistory({ changes: 300, seed: 5 });
      await live.write(asRecords(events));
      await live.write(asRecords([makeEvent({ table: 'ghosts', key: { id: 1 }, after: { id: 1 }, version: makeVersion(9000n, 1) })], 1));
      await live.flush();
      const before = await currentRows();

      const rebuild = await openSink({}, 2);
      assert.equal(await rebuild.liveGeneration(), 1);
      await rebuild.write(asRecords(events.slice(0, 120)));
      await rebuild.flush();
      assert.deepEqual(await currentRows(), before, 'readers keep the live generation while the new one builds');
      await rebuild.write(asRecords(events.slice(120), 0, 120));
      await rebuild.flush();
      await live.close();
      open.splice(open.indexOf(live), 1);
      await rebuild.promote();

      assert.deepEqual(await currentRows(), expectedRows(events));
      assert.deepEqual(await currentRows(['ghosts']), new Map(), 'a table the new generation never saw reads as empty');
      const tables = await reading(async (engine) => (await engine.query(
        `SELECT table_name AS t FROM information_schema.tables WHERE table_name LIKE 'public__%' ${engineName === 'postgres' ? `AND table_schema = '${target.schema}'` : ''} ORDER BY 1`)).map((r) => r.t));
      assert.deepEqual(tables, ['public__ghosts', 'public__ghosts__changes', 'public__items', 'public__items__changes', 'public__order_lines', 'public__order_lines__changes']);
      await rebuild.close();
      open.splice(open.indexOf(rebuild), 1);
      const unopened = new WarehouseSink(warehouseSinkConfig.parse({ name: 'wh', type: 'warehouse', ...target }), { logger: quietLogger, dataDir: dir }, new DeadLetterStore(dir, 'wh'));
      assert.equal(await unopened.liveGeneration(), 2, 'the live generation can be read before open()');
      const reopened = await openSink();
      assert.equal(reopened.generation, 2);
      assert.deepEqual(await reopened.storedOffsets(), new Map([[0, events.length]]));
    });

    // DuckDB is embedded: there is no connection to cut.
    if (engineName === 'postgres') it('keeps its batch and reconnects when the Postgres connection is cut (the runner retries the flush)', async () => {
      const sink = await openSink();
      const events = changeHistory({ changes: 200, seed: 8 });
      await sink.write(asRecords(events.slice(0, 100)));
      await sink.flush();
      await reading((engine) => engine.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tidewater warehouse sink' AND pid <> pg_backend_pid()`));
      await sink.write(asRecords(events.slice(100), 0, 100));
      await assert.rejects(sink.flush(), /terminat|connection error/);
      await sink.flush();
      assert.deepEqual(await currentRows(), expectedRows(events));
      assert.deepEqual(await sink.storedOffsets(), new Map([[0, 200]]));
    });

    it('holds each change exactly once in __changes, and offsets that match the data, across kill -9s mid-batch', async function () {
      const spec: WriterSpec = { config: { name: 'wh', type: 'warehouse', ...target }, dataDir: dir, changes: 6000, partitions: 3, batch: 400 };
      const logs = partitionedHistory(spec.changes, spec.partitions);
      const script = join(packageRoot(), 'dist', 'test', 'support', 'warehouse-writer.js');
      const random = seeded(3);
      for (let run = 0; ; run++) {
        const finished = await runWriter(script, spec, run < 3 ? 2 + Math.floor(random() * 4) : null);
        // Whatever the kill interrupted, the stored offsets and the data agree.
        const stored = await reading(async (engine) => {
          const rows = await engine.query(`SELECT partition_no AS p, next_offset AS o FROM ${engine.table('_cdc_offsets')}`);
          return new Map(rows.map((r) => [Number(r.p), Number(r.o)]));
        });
        const applied = logs.flatMap((records, p) => records.slice(0, stored.get(p) ?? 0).map((r) => r.event));
        assert.deepEqual(await historyEntries(), distinctChanges(applied), `after run ${run}: history = exactly the changes below the stored offsets`);
        if (finished) break;
        assert.ok(run < 10, 'the writer finishes');
      }
      assert.deepEqual(await currentRows(), expectedRows(changeHistory({ changes: spec.changes, seed: 77, keysPerTable: 600, truncateAt: 0.6 })));
    });

    it('absorbs a backlog through the sink runner in whole batches (few transactions), equal to the source; a runner stopped mid-backlog resumes from the stored offsets', async function () {
      this.timeout(300_000);
      const changes = 40_000;
      const events = changeHistory({ changes, seed: 11, keysPerTable: 3000, truncateAt: 0.6 });
      const log = new FileLog({ dir: join(dir, 'log'), partitions: 4, compaction: { enabled: false } });
      await log.open();
      try {
        for (let i = 0; i < events.length; i += 2000) await log.append(events.slice(i, i + 2000));
        const ends = await log.endOffsets();
        const total = ends.reduce((a, b) => a + b, 0);
        const consumer = 'sink-wh';
        const stored = () => reading(async (engine) => {
          const rows = (await engine.columns('_cdc_offsets')) ? await engine.query(`SELECT partition_no AS p, next_offset AS o FROM ${engine.table('_cdc_offsets')}`) : [];
          const offsets = ends.map(() => 0);
          for (const r of rows) offsets[Number(r.p)] = Number(r.o);
          return offsets;
        });
        const runUntil = async (done: (offsets: number[]) => boolean) => {
          const sink = await openSink();
          const runner = new SinkRunner({ sink, log, metrics: new Metrics(), logger: quietLogger, lagIntervalMs: 100_000 });
          const stop = new AbortController();
          const running = runner.run(stop.signal);
          const deadline = Date.now() + 100_000;
          while (!done(await stored())) {
            assert.ok(Date.now() < deadline, 'the runner makes progress');
            await new Promise((r) => setTimeout(r, 20));
          }
          stop.abort();
          await running;
          open.splice(open.indexOf(sink), 1);
        };
        // Stopped once part of the backlog is durable; then the log forgets its committed offsets (a lost commit):
        // the sink's own offsets, stored with the data, say where to resume.
        await runUntil((offsets) => offsets.some((o) => o > 0));
        const midway = await stored();
        assert.ok(midway.some((o, p) => o < ends[p]), `stopped mid-backlog (stored ${midway}, ends ${ends})`);
        for (let p = 0; p < ends.length; p++) await log.commit(consumer, p, 0);
        await runUntil((offsets) => offsets.every((o, p) => o >= ends[p]));
        assert.deepEqual(await currentRows(), expectedRows(events));
        assert.deepEqual(await historyEntries(), distinctChanges(events), 'each change exactly once in the history');
        // One transaction stamps its rows with one _cdc_synced_at (its start): each holds at least a whole batch on average.
        const transactions = await reading(async (engine) => {
          const [row] = await engine.query(`SELECT count(DISTINCT _cdc_synced_at) AS n FROM ${engine.table('public__items__changes')}`);
          return Number(row.n);
        });
        assert.ok(transactions <= Math.ceil(total / DEFAULT_MAX_BATCH), `${transactions} transactions for ${total} records`);
      } finally {
        await log.close();
      }
    });
  });
}

/** Runs the writer; with `killAfter`, SIGKILLs it a few ms after that many flushes began (mid-transaction). Resolves true when it finished on its own. */
function runWriter(script: string, spec: WriterSpec, killAfter: number | null): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let flushes = 0;
    let errors = '';
    let finished = false;
    child.stdout.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) {
        if (line === 'done') finished = true;
        if (line.startsWith('flushing') && killAfter !== null && ++flushes === killAfter) setTimeout(() => child.kill('SIGKILL'), 2 + (flushes % 5));
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL' || code === 0) resolve(finished);
      else reject(new Error(`the writer failed (${code}): ${errors}`));
    });
  });
}
