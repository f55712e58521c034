// Memory of each sink writing rows with 50 MB values (issue 11: rows with 50 MB values under 300 MB):
// `npm run build && node dist/bench/big-value-sinks.js [--sinks redis,elasticsearch,duckdb] [--mb 50] [--rows 3]`.
// Each sink runs in a child process of its own (as deploy/ starts node: young generation bounded),
// writes small rows first, then the big rows one at a time, each as it comes out of the log (a
// string of its own), with a full collection before each. Prints the peak resident memory over
// the resident memory just before each row: what one such row costs that sink.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChangeEvent } from '../core/event/change-event';
import { makeVersion } from '../core/event/version';
import { Sink } from '../core/contracts/sink';
import { collectGarbageNow } from '../core/runtime/collect-garbage';
import { asDeployed, tuneGarbageCollection } from '../core/runtime/gc-tuning';
import { createLogger } from '../core/runtime/logger';
import { elasticsearchSinkConfig } from '../sinks/elasticsearch/config';
import { ElasticsearchSink } from '../sinks/elasticsearch/es-sink';
import { redisSinkConfig } from '../sinks/redis/config';
import { RedisSink } from '../sinks/redis/redis-sink';
import { DeadLetterStore } from '../sinks/shared/dead-letters';
import { warehouseSinkConfig } from '../sinks/warehouse/config';
import { WarehouseSink } from '../sinks/warehouse/warehouse-sink';
import { startRedis } from '../test/support/servers';
import { startEsServerProcess } from './lib/es-server-process';
import { statusMb } from './lib/rss';

const logger = createLogger('bench', () => undefined);
const SINKS = ['redis', 'elasticsearch', 'duckdb'] as const;
type SinkName = (typeof SINKS)[number];

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] ? process.argv[at + 1] : fallback;
}

function record(id: number, note: string) {
  const event: ChangeEvent = {
    op: 'c',
    key: { id },
    before: null,
    after: { id, note, label: `row ${id}` },
    source: { connector: 'postgresql', name: 'bench', db: 'shop', schema: 'public', table: 'items', position: String(id), version: makeVersion(BigInt(1000 + id), 1), ts_ms: Date.now() },
    ts_ms: Date.now(),
  };
  return { partition: 0, offset: id, event };
}

/** In the child: one sink, its server, the rows; prints a JSON line with the peaks. */
async function measureOne(name: SinkName, mb: number, rows: number): Promise<void> {
  tuneGarbageCollection();
  const dir = mkdtempSync(join(tmpdir(), 'tidewater-bench-big-'));
  const stops: (() => Promise<void>)[] = [];
  let sink: Sink;
  if (name === 'redis') {
    const redis = await startRedis();
    stops.push(() => redis.stop());
    sink = new RedisSink(redisSinkConfig.parse({ name: 'bench', type: 'redis', url: redis.url }), logger);
  } else if (name === 'elasticsearch') {
    const es = await startEsServerProcess();
    stops.push(() => es.stop());
    sink = new ElasticsearchSink(elasticsearchSinkConfig.parse({ name: 'bench', type: 'elasticsearch', node: es.url }), logger, new DeadLetterStore(dir, 'bench'));
  } else {
    sink = new WarehouseSink(warehouseSinkConfig.parse({ name: 'bench', type: 'warehouse', engine: 'duckdb', path: join(dir, 'warehouse.duckdb') }),
      { logger, dataDir: dir }, new DeadLetterStore(dir, 'bench'));
  }
  try {
    await sink.open();
    await sink.write(Array.from({ length: 100 }, (_, i) => record(i, `small ${i}`)));
    await sink.flush();
    const peaks: number[] = [];
    for (let i = 0; i < rows; i++) {
      // As the log hands it over: a value decoded on its own (parseJsonBuffer), no other reference.
      let big: ReturnType<typeof record> | null = record(1000 + i, JSON.parse(JSON.stringify(String.fromCharCode(97 + i).repeat(mb << 20))) as string);
      collectGarbageNow();
      collectGarbageNow();
      const before = statusMb(process.pid, 'VmRSS')!;
      writeFileSync('/proc/self/clear_refs', '5'); // resets VmHWM to the current RSS
      await sink.write([big]);
      big = null;
      await sink.flush();
      peaks.push(statusMb(process.pid, 'VmHWM')! - before);
    }
    process.stdout.write(`${JSON.stringify({ sink: name, peaks })}\n`);
  } finally {
    await sink.close();
    for (const stop of stops) await stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function main(): void {
  const child = option('child', '');
  const mb = Number(option('mb', '50'));
  const rows = Number(option('rows', '3'));
  if (child) {
    measureOne(child as SinkName, mb, rows).then(() => process.exit(0), (error) => {
      console.error(error);
      process.exit(1);
    });
    return;
  }
  const sinks = option('sinks', SINKS.join(',')).split(',') as SinkName[];
  console.log(`${rows} rows with a ${mb} MB value, one at a time, each sink alone in a process: peak RSS over the RSS before each row`);
  for (const name of sinks) {
    const { args, env } = asDeployed([__filename, '--child', name, '--mb', String(mb), '--rows', String(rows)]);
    const out = execFileSync(process.execPath, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const { peaks } = JSON.parse(out.trim().split('\n').pop()!) as { peaks: number[] };
    console.log(`  ${name.padEnd(14)} ${peaks.map((p) => `+${p.toFixed(0)} MB`).join('  ')}`);
  }
}

main();
