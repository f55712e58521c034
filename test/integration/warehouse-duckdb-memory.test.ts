import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { createLogger } from '../../core/runtime/logger';
import { makeVersion } from '../../core/event/version';
import { DeadLetterStore } from '../../sinks/shared/dead-letters';
import { warehouseSinkConfig } from '../../sinks/warehouse/config';
import { WarehouseSink } from '../../sinks/warehouse/warehouse-sink';
import { makeEvent } from '../support/events';
import { asRecords } from '../support/sink-history';

// The fault suite saw a DuckDB warehouse with memory_limit 64MB fail one batch
// of 5 MB values with "Out of Memory Error" on every retry, for good, while
// the other sinks went on. The sink must get past it by itself.
describe('Warehouse sink (duckdb) under a small memory_limit', function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'tidewater-duck-mem-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a batch of big values that does not fit in memory_limit, with the retries the sink runner makes, and says what it did', async () => {
    const warnings: string[] = [];
    const logger = createLogger('test', (line) => {
      if (process.env.SHOW) console.log(line.slice(0, 220));
      if (/"level":"?(warn|40)/i.test(line) || line.includes('WARN')) warnings.push(line);
    });
    const path = join(dir, 'w.duckdb');
    const config = warehouseSinkConfig.parse({ name: 'wh', type: 'warehouse', engine: 'duckdb', path, memoryLimit: '16MB' });
    const sink = new WarehouseSink(config, { logger, dataDir: dir }, new DeadLetterStore(dir, 'wh'));
    await sink.open();
    const big = (i: number) => String.fromCharCode(97 + (i % 26)).repeat(3 << 20); // 3 MiB each
    const events = Array.from({ length: 4 }, (_, i) =>
      makeEvent({ key: { id: i + 1 }, after: { id: i + 1, payload: big(i) }, version: makeVersion(BigInt(1000 + i), 0) }),
    );
    let attempts = 0;
    for (;;) {
      attempts++;
      try {
        await sink.write(asRecords(events));
        await sink.flush();
        break;
      } catch (error) {
        assert.match((error as Error).message, /Out of Memory/i, 'only an out-of-memory failure is expected here');
        assert.ok(attempts < 8, `still failing after ${attempts} attempts: ${(error as Error).message}`);
      }
    }
    await sink.close();

    const instance = await DuckDBInstance.create(path);
    const connection = await instance.connect();
    const rows = (await (await connection.runAndReadAll('SELECT id, length(payload) AS n, substr(payload, 1, 1) AS c FROM public__items ORDER BY id')).getRowObjectsJS()) as Array<{ id: bigint | number; n: bigint | number; c: string }>;
    connection.closeSync();
    assert.equal(rows.length, 4, 'every row written');
    rows.forEach((row, i) => {
      assert.equal(Number(row.n), 3 << 20, `row ${i + 1} holds its whole value`);
      assert.equal(row.c, String.fromCharCode(97 + (i % 26)));
    });
    if (attempts > 1) assert.ok(warnings.some((w) => w.includes('DuckDB ran out of memory')), `a warning says what happened: ${warnings.join('\n')}`);
    console.log(`      (${attempts} attempt(s) for a batch of 4 × 3 MiB values under memory_limit 16MB)`);
  });
  // The full fault suite's 50 MB values: each took five failed attempts to climb to a limit it fitted in,
  // and once a CHECKPOINT ran out of memory too the limit stopped climbing: the warehouse retried for good.
  it('gives a transaction with a value of many MB the memory it needs up front: every row lands on the first attempt', async () => {
    const lines: string[] = [];
    const logger = createLogger('test', (line) => lines.push(line));
    const path = join(dir, 'w.duckdb');
    const config = warehouseSinkConfig.parse({ name: 'wh', type: 'warehouse', engine: 'duckdb', path, memoryLimit: '16MB' });
    const sink = new WarehouseSink(config, { logger, dataDir: dir }, new DeadLetterStore(dir, 'wh'));
    await sink.open();
    const sizes = [12 << 20, 100, 12 << 20];
    for (const [i, size] of sizes.entries()) {
      const event = makeEvent({ key: { id: i + 1 }, after: { id: i + 1, payload: 'v'.repeat(size) }, version: makeVersion(BigInt(2000 + i), 0) });
      await sink.write(asRecords([event]));
      await sink.flush(); // throws if the transaction ran out of memory: no retry here
    }
    await sink.close();
    const instance = await DuckDBInstance.create(path);
    const connection = await instance.connect();
    const rows = (await (await connection.runAndReadAll('SELECT id, length(payload) AS n FROM public__items ORDER BY id')).getRowObjectsJS()) as Array<{ id: bigint | number; n: bigint | number }>;
    connection.closeSync();
    assert.deepEqual(rows.map((r) => [Number(r.id), Number(r.n)]), sizes.map((size, i) => [i + 1, size]));
    const raised = lines.filter((l) => l.includes('DuckDB memory_limit raised to'));
    assert.equal(raised.length, 2, `one line per big transaction says what was raised and why:\n${lines.join('\n')}`);
    assert.match(raised[0], /a transaction of 12\.\d MB of changes: DuckDB memory_limit raised to \d+MiB until it commits \(configured 16MB\)/);
  });
  it('retries a transaction of a big value on a new connection after its connection died mid-way', async () => {
    const path = join(dir, 'w.duckdb');
    const config = warehouseSinkConfig.parse({ name: 'wh', type: 'warehouse', engine: 'duckdb', path, memoryLimit: '16MB' });
    const sink = new WarehouseSink(config, { logger: createLogger('test', () => undefined), dataDir: dir }, new DeadLetterStore(dir, 'wh'));
    await sink.open();
    // The connection goes away while the first attempt stages its rows (as a hung write given up on does).
    const engine = (sink as unknown as { engine: { stage: (...args: unknown[]) => Promise<void>; close(): Promise<void> } }).engine;
    const stage = engine.stage.bind(engine);
    let failed = false;
    engine.stage = async (...args: unknown[]) => {
      if (failed) return stage(...args);
      failed = true;
      await engine.close();
      throw new Error('connection lost (test)');
    };
    const event = makeEvent({ key: { id: 1 }, after: { id: 1, payload: 'b'.repeat(4 << 20) }, version: makeVersion(4000n, 0) });
    const errors: string[] = [];
    for (let attempt = 1; ; attempt++) {
      try {
        await sink.write(asRecords([event]));
        await sink.flush();
        break;
      } catch (error) {
        errors.push((error as Error).message);
        assert.ok(attempt < 4, `still failing after ${attempt} attempts:\n${errors.join('\n')}`);
      }
    }
    await sink.close();
    assert.deepEqual(errors, ['connection lost (test)'], 'one failed attempt, then the retry on a new connection lands it');
    const instance = await DuckDBInstance.create(path);
    const connection = await instance.connect();
    const rows = (await (await connection.runAndReadAll('SELECT id, length(payload) AS n FROM public__items')).getRowObjectsJS()) as Array<{ id: bigint | number; n: bigint | number }>;
    connection.closeSync();
    assert.deepEqual(rows.map((r) => [Number(r.id), Number(r.n)]), [[1, 4 << 20]]);
  });
});
