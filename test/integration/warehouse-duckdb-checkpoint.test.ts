import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../core/runtime/logger';
import { partitionEvents } from '../../bench/sink-workload';
import { DeadLetterStore } from '../../sinks/shared/dead-letters';
import { warehouseSinkConfig } from '../../sinks/warehouse/config';
import { DuckDbEngine } from '../../sinks/warehouse/duckdb';
import { checkpointThreshold } from '../../sinks/warehouse/duckdb-settings';
import { WarehouseSink } from '../../sinks/warehouse/warehouse-sink';

describe('Warehouse on DuckDB: checkpoint threshold within memoryLimit', function () {
  this.timeout(300_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'tidewater-duckdb-memory-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('checkpoints at half of memoryLimit (at most 256 MB), so what waits for a checkpoint fits in memory', () => {
    assert.equal(checkpointThreshold('64MB'), '33554KB');
    assert.equal(checkpointThreshold('1GiB'), '256000KB');
    assert.equal(checkpointThreshold('1MB'), '1000KB');
    assert.equal(checkpointThreshold(undefined), '256000KB');
  });

  it('replays many updates of a table under a small memoryLimit without "Out of Memory", and holds the newest rows', async () => {
    // Under 32MB with the former fixed 256 MB threshold, this replay ran out of memory in a MERGE (then failed; since
    // the sink's out-of-memory recovery it raises memory_limit and says so): it must stay within the limit.
    const w = { events: 200_000, keys: 50_000, partitions: 4, batch: 1000 };
    const config = warehouseSinkConfig.parse({ name: 'wh', type: 'warehouse', engine: 'duckdb', path: join(dir, 'w.duckdb'), memoryLimit: '32MB' });
    const warnings: string[] = [];
    const logger = createLogger('test', (line) => void (line.includes('WARN') && warnings.push(line)));
    const sink = new WarehouseSink(config, { logger, dataDir: dir }, new DeadLetterStore(dir, 'wh'));
    await sink.open();
    const newest = new Map<number, { step: number } | null>();
    try {
      await Promise.all(Array.from({ length: w.partitions }, async (_, p) => {
        for (const batch of partitionEvents(w, p)) {
          for (const { event } of batch) newest.set(Number(event.key.id), event.after ? { step: Number(event.after.step) } : null);
          await sink.write(batch);
          await sink.flush();
        }
      }));
    } finally {
      await sink.close();
    }
    const engine = new DuckDbEngine(join(dir, 'w.duckdb'));
    await engine.open();
    try {
      const rows = await engine.query('SELECT id, step FROM public__items WHERE NOT _cdc_deleted');
      const expected = [...newest].filter(([, row]) => row !== null).length;
      assert.equal(rows.length, expected);
      for (const row of rows) assert.equal(Number(row.step), newest.get(Number(row.id))!.step, `row ${row.id}`);
      const [{ n }] = await engine.query('SELECT count(*) AS n FROM public__items__changes');
      assert.equal(Number(n), w.events, 'every change once in the history');
      assert.deepEqual(warnings.filter((line) => /memory/i.test(line)), [], 'no out-of-memory recovery was needed');
    } finally {
      await engine.close();
    }
  });
});
