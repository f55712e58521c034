// Log replay into each sink, beside the raw client writing the same events
// (issue 6 / docs/architecture.md §7): `npm run bench:sinks -- [--events 1000000] [--keys 100000]
// [--partitions 4] [--batch 1000] [--tables 1] [--sinks redis,duckdb,postgres,elasticsearch]`.
// Starts its own throwaway servers; prints events/s and the ratio to the baseline.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tuneGarbageCollection } from '../core/runtime/gc-tuning';
import { createLogger } from '../core/runtime/logger';
import { elasticsearchSinkConfig } from '../sinks/elasticsearch/config';
import { ElasticsearchSink } from '../sinks/elasticsearch/es-sink';
import { redisSinkConfig } from '../sinks/redis/config';
import { RedisSink } from '../sinks/redis/redis-sink';
import { DeadLetterStore } from '../sinks/shared/dead-letters';
import { Sink } from '../core/contracts/sink';
import { warehouseSinkConfig } from '../sinks/warehouse/config';
import { WarehouseSink } from '../sinks/warehouse/warehouse-sink';
import { startPostgres, startRedis, stopAll } from '../test/support/servers';
import { duckdbAppender, esRawBulk, postgresCopy, Rate, redisBenchmark, redisPipelined } from './sink-baselines';
import { batchOf, benchRow, replayInto, Workload } from './sink-workload';
import { startEsServerProcess } from './lib/es-server-process';
import { peakRssMb, resetPeakRss } from './lib/rss';

const logger = createLogger('bench', () => undefined);

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] ? process.argv[at + 1] : fallback;
}

interface Result {
  sink: string;
  ours: number;
  /** Peak RSS of this process while our sink ran (the baselines run after it, the servers in processes of their own). */
  peakRssMb: number;
  /** Records per write (the sink's own read size, or the workload's). */
  batch: number;
  baselines: Rate[];
}

/** Replays the workload into `sink`: events/s, and this process's peak RSS from the sink's open to its close. */
async function measure(name: string, sink: Sink, w: Workload): Promise<{ ours: number; peakRssMb: number; batch: number }> {
  resetPeakRss();
  await sink.open();
  let elapsed: number;
  try {
    elapsed = await replayInto(sink, w);
    process.stderr.write(`  ${name}: ${w.events} events in ${elapsed.toFixed(1)} s\n`);
  } finally {
    await sink.close();
  }
  return { ours: w.events / elapsed, peakRssMb: peakRssMb() ?? 0, batch: batchOf(sink, w) };
}

async function main(): Promise<void> {
  tuneGarbageCollection(); // the heap kept near its live data, as `cdc run` keeps it
  const w: Workload = {
    events: Number(option('events', '1000000')),
    keys: Number(option('keys', '100000')),
    partitions: Number(option('partitions', '4')),
    batch: Number(option('batch', '1000')),
    tables: Number(option('tables', '1')),
  };
  const wanted = option('sinks', 'redis,duckdb,postgres,elasticsearch').split(',');
  const dir = mkdtempSync(join(tmpdir(), 'tidewater-bench-sinks-'));
  const results: Result[] = [];
  process.stderr.write(`replaying ${w.events} events over ${w.keys} rows in ${w.tables} table(s), ${w.partitions} partitions, batches of ${w.batch}\n`);
  try {
    if (wanted.includes('redis')) {
      const redis = await startRedis();
      const sink = new RedisSink(redisSinkConfig.parse({ name: 'bench', type: 'redis', url: redis.url, keyPrefix: 'cdc:' }), logger);
      const ours = await measure('redis sink', sink, w);
      const valueBytes = JSON.stringify(benchRow(12345, 543210)).length;
      results.push({ sink: 'redis', ...ours, baselines: [await redisPipelined(redis.url, w), await redisBenchmark(redis.port, w, valueBytes)] });
      await redis.stop();
    }
    if (wanted.includes('duckdb')) {
      const sink = new WarehouseSink(warehouseSinkConfig.parse({ name: 'bench', type: 'warehouse', engine: 'duckdb', path: join(dir, 'warehouse.duckdb') }),
        { logger, dataDir: dir }, new DeadLetterStore(dir, 'bench'));
      results.push({ sink: 'warehouse duckdb', ...(await measure('duckdb warehouse sink', sink, w)), baselines: [await duckdbAppender(dir, w)] });
    }
    if (wanted.includes('postgres')) {
      const pg = await startPostgres();
      const sink = new WarehouseSink(warehouseSinkConfig.parse({ name: 'bench', type: 'warehouse', engine: 'postgres', url: pg.url }),
        { logger, dataDir: dir }, new DeadLetterStore(dir, 'bench'));
      results.push({ sink: 'warehouse postgres', ...(await measure('postgres warehouse sink', sink, w)), baselines: [await postgresCopy(pg.url, dir, w)] });
      await pg.stop();
    }
    if (wanted.includes('elasticsearch')) {
      const es = await startEsServerProcess();
      const sink = new ElasticsearchSink(elasticsearchSinkConfig.parse({ name: 'bench', type: 'elasticsearch', node: es.url, indexPrefix: 'cdc-' }),
        logger, new DeadLetterStore(dir, 'bench'));
      results.push({ sink: 'elasticsearch (in-repo server)', ...(await measure('elasticsearch sink', sink, w)), baselines: [await esRawBulk(es.url, w)] });
      await es.stop();
    }
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
  printTable(results, w);
}

function printTable(results: Result[], w: Workload): void {
  const rows = [['sink', 'ours (events/s)', 'baseline', 'baseline (/s)', 'ratio']];
  for (const { sink, ours, baselines } of results) {
    baselines.forEach((b, i) => rows.push([i === 0 ? sink : '', i === 0 ? Math.round(ours).toLocaleString('en') : '', b.label, Math.round(b.perSecond).toLocaleString('en'), `${((ours / b.perSecond) * 100).toFixed(0)}%`]));
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  console.log(`\nsink replay: ${w.events.toLocaleString('en')} events, ${w.keys.toLocaleString('en')} rows, ${w.partitions} partitions, batches of ${w.batch}`);
  for (const row of rows) console.log(row.map((cell, c) => (c === 0 || c === 2 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  '));
  console.log(JSON.stringify({ workload: w, results }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
