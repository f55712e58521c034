import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChangeEvent } from '../../core/event/change-event';
import { makeVersion } from '../../core/event/version';
import { Metrics } from '../../core/http/metrics';
import { ChangeLog } from '../../core/log/change-log';
import { createLog } from '../../core/log/create-log';
import { KafkaLogConfig, logConfig } from '../../core/log/log-config';
import { createLogger } from '../../core/runtime/logger';
import { SinkRunner } from '../../core/runtime/sink-runner';
import { supervise } from '../../core/runtime/supervise';
import { DeadLetterStore } from '../../sinks/shared/dead-letters';
import { warehouseSinkConfig } from '../../sinks/warehouse/config';
import { DuckDbEngine } from '../../sinks/warehouse/duckdb';
import { WarehouseSink } from '../../sinks/warehouse/warehouse-sink';
import { makeEvent } from '../support/events';
import { KafkaMock, startKafkaMock } from '../support/servers';

const PARTITIONS = 4;

/** Rows per table in the warehouse's current-state tables (deleted ones left out). */
async function warehouseCounts(path: string): Promise<Record<string, number>> {
  const engine = new DuckDbEngine(path);
  await engine.open();
  try {
    const out: Record<string, number> = {};
    for (const table of ['items', 'orders']) {
      if (!(await engine.columns(`public__${table}`))) continue;
      const [row] = await engine.query(`SELECT count(*)::INTEGER AS n FROM ${engine.table(`public__${table}`)} WHERE NOT _cdc_deleted`);
      out[table] = Number(row.n);
    }
    return out;
  } finally {
    await engine.close();
  }
}

describe('DuckDB warehouse on the Kafka log: concurrent partitions, rebalances, restarts', function () {
  this.timeout(180_000);
  let mock: KafkaMock;
  let dir: string;
  const logs: ChangeLog[] = [];
  const lines: string[] = [];
  const logger = createLogger('test', (line) => {
    lines.push(line);
    if (process.env.TEST_VERBOSE) process.stderr.write(line + '\n');
  });

  before(async () => {
    mock = await startKafkaMock({ brokers: 3, topics: [{ name: 'stall.changes', partitions: PARTITIONS }, { name: 'hang.changes', partitions: PARTITIONS }] });
  });
  after(async () => mock?.stop());
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tidewater-wh-kafka-'));
    lines.length = 0;
  });
  afterEach(async () => {
    await Promise.allSettled(logs.splice(0).map((l) => l.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  async function openLog(topic: string): Promise<ChangeLog> {
    const config = logConfig.parse({ type: 'kafka', brokers: mock.brokers, topic, partitions: PARTITIONS, sessionTimeoutMs: 6000, idempotent: false }) as KafkaLogConfig;
    const log = createLog(config, { serviceName: 'stall', dataDir: dir, tables: [] });
    logs.push(log);
    await log.open();
    return log;
  }

  function newSink(): WarehouseSink {
    const config = warehouseSinkConfig.parse({ name: 'warehouse', type: 'warehouse', engine: 'duckdb', path: join(dir, 'w.duckdb') });
    return new WarehouseSink(config, { logger, dataDir: dir }, new DeadLetterStore(dir, 'warehouse'));
  }

  /** What a snapshot under load appends: a truncate per table (in every partition), then rows, then updates of them. */
  function workload(rows: number): ChangeEvent[][] {
    let lsn = 1n;
    const v = () => makeVersion(lsn++, 1);
    const batches: ChangeEvent[][] = [[makeEvent({ table: 'items', op: 't', version: v() }), makeEvent({ table: 'orders', op: 't', version: v() })]];
    for (let start = 0; start < rows; start += 250) {
      const batch: ChangeEvent[] = [];
      for (let id = start; id < Math.min(rows, start + 250); id++) {
        const table = id % 2 ? 'items' : 'orders';
        batch.push(makeEvent({ table, key: { id }, op: 'r', after: { id, name: `seed ${id}`, note: 'x'.repeat(200) }, version: v() }));
      }
      batches.push(batch);
      // Updates of rows already appended, as a live source would interleave them.
      batches.push(Array.from({ length: 50 }, (_, i) => {
        const id = Math.floor((start * 7 + i * 13) % (start + 250));
        return makeEvent({ table: id % 2 ? 'items' : 'orders', key: { id }, op: 'u', after: { id, name: `w ${id}`, note: 'y' }, version: v() });
      }));
    }
    return batches;
  }

  it('applies every partition while the group rebalances and the sink restarts under load, without stalling', async () => {
    const log = await openLog('stall.changes');
    const metrics = new Metrics();
    const controller = new AbortController();
    const runner = new SinkRunner({ sink: newSink(), log, metrics, logger, maxBatch: 250 });
    let done = supervise('sink warehouse', () => runner.run(controller.signal), controller.signal, logger);
    const rows = 6000;
    const batches = workload(rows);
    const appending = (async () => {
      for (const batch of batches) {
        await log.append(batch);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    // A second member (on the same DuckDB file) joins then leaves the group twice: a rebalance each time; then the first runner restarts.
    await new Promise((r) => setTimeout(r, 3000));
    for (let round = 0; round < 2; round++) {
      const other = new AbortController();
      const second = new SinkRunner({ sink: newSink(), log, metrics: new Metrics(), logger, maxBatch: 250 });
      const secondDone = second.run(other.signal).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 4000));
      other.abort();
      await secondDone;
    }
    controller.abort();
    await done;
    const restarted = new AbortController();
    const runner2 = new SinkRunner({ sink: newSink(), log, metrics, logger, maxBatch: 250 });
    done = supervise('sink warehouse', () => runner2.run(restarted.signal), restarted.signal, logger);
    await appending;

    const ends = await log.endOffsets();
    const deadline = Date.now() + 90_000;
    let progress = await runner2.progress();
    while (Date.now() < deadline && progress.lagEvents > 0) {
      await new Promise((r) => setTimeout(r, 500));
      progress = await runner2.progress();
    }
    restarted.abort();
    await done;
    assert.equal(progress.lagEvents, 0, `the warehouse sink stalled: lag ${progress.lagEvents}, committed ${progress.committed} of ${ends}\n${lines.filter((l) => /WARN|ERROR/.test(l)).slice(-15).join('\n')}`);
    assert.deepEqual(await warehouseCounts(join(dir, 'w.duckdb')), { items: rows / 2, orders: rows / 2 });
  });

  it('gives up on a write that hangs: after hangMs the attempt fails, is counted as a "stalled" restart, and the reopened sink applies everything', async () => {
    const log = await openLog('hang.changes');
    const metrics = new Metrics();
    const controller = new AbortController();
    const sink = newSink();
    const runner = new SinkRunner({ sink, log, metrics, logger, maxBatch: 250, stallMs: 1000, hangMs: 4000 });
    const done = supervise('sink warehouse', () => runner.run(controller.signal), controller.signal, logger);
    while (!runner.ready) await new Promise((r) => setTimeout(r, 100));
    // A DuckDB statement that does not end for hours holds the sink's one connection: the first flush queues behind it forever.
    const engine = (sink as unknown as { engine: DuckDbEngine }).engine;
    const endless = engine.query('SELECT count(*) FROM range(1000000000000) a WHERE a.range % 7 = 3').catch((error: Error) => error);
    await new Promise((r) => setTimeout(r, 200));
    const rows = 2000;
    for (const batch of workload(rows)) await log.append(batch);
    const deadline = Date.now() + 90_000;
    let lag = (await runner.progress()).lagEvents;
    while (Date.now() < deadline && lag > 0) {
      await new Promise((r) => setTimeout(r, 500));
      lag = (await runner.progress()).lagEvents;
    }
    controller.abort();
    await done;
    const warnings = lines.filter((l) => /WARN|ERROR/.test(l));
    assert.equal(lag, 0, `the sink did not recover from the hung write:\n${warnings.slice(-10).join('\n')}`);
    const endedWith = await endless;
    assert.ok(endedWith instanceof Error && /interrupt/i.test(endedWith.message), `the hung statement was interrupted when the sink reopened; it ended with ${JSON.stringify(endedWith, (_, v) => (typeof v === 'bigint' ? Number(v) : v))} ${String(endedWith)}`);
    assert.ok(warnings.some((l) => /writing topic hang\.changes partition \d offsets \d+\.\.\d+ has not finished after \d+ s \(waiting for SELECT count\(\*\) FROM range/.test(l)),
      `the stall warning names the statement it waits for:\n${warnings.join('\n')}`);
    assert.ok(warnings.some((l) => /has not finished after 4 s .*restarting the sink \(the batch is replayed from the log\)/.test(l)), warnings.join('\n'));
    const restarts = (await metrics.registry.getSingleMetric('cdc_component_restarts_total')!.get()).values;
    assert.deepEqual(restarts.filter((v) => v.labels.reason === 'stalled').map((v) => [v.labels.component, v.value]), [['sink warehouse', 1]]);
    assert.deepEqual(await warehouseCounts(join(dir, 'w.duckdb')), { items: rows / 2, orders: rows / 2 });
  });
});
