// Scenario 6: memory under a backlog. The service runs sources only while a
// backlog of N unconsumed events piles up in the log, then restarts with its
// Redis sink, which replays the log from offset zero. Peak RSS (VmHWM) of the
// service is read in both phases; the drain rate is set beside the raw
// pipelined client writing the same documents.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Redis from 'ioredis';
import { Client } from 'pg';
import { freePort } from '../test/support/servers';
import { ServiceProcess, writeConfig } from '../test/support/service-process';
import { BenchRow, summarize } from './lib/report';
import { main } from './lib/runner';
import { BenchContext, mb, profiledChildEnv, Scenario } from './lib/scenario';
import { RssWatcher } from './lib/rss';

const ITEMS = `CREATE TABLE items (id int PRIMARY KEY, name text, qty int, updated_at timestamptz(6))`;
const TRANSACTION_ROWS = 10_000;

/** Sum of a Prometheus counter's series whose labels contain `match`. */
async function counter(service: ServiceProcess, name: string, match = ''): Promise<number> {
  let sum = 0;
  for (const line of (await service.metrics()).split('\n')) {
    if (line.startsWith(`${name}{`) && line.includes(match)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string, intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** The raw client: the same documents, SET in pipelines of 1,000, 8 at a time (our 8 partitions). */
async function rawPipelined(url: string, rows: number): Promise<number> {
  const redis = new Redis(url);
  const started = performance.now();
  let next = 1;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next <= rows) {
      const pipeline = redis.pipeline();
      for (let i = 0; i < 1000 && next <= rows; i++, next++) {
        const doc = { id: next, name: `item ${next}`, qty: next % 1000, updated_at: new Date(1_704_067_200_000 + next * 1000).toISOString().replace('Z', '000Z') };
        pipeline.set(`raw:public.items:${next}`, JSON.stringify(doc));
      }
      await pipeline.exec();
    }
  }));
  const rate = rows / ((performance.now() - started) / 1000);
  redis.disconnect();
  return rate;
}

export const memoryScenario: Scenario = {
  name: 'memory',
  summary: 'peak RSS of the service while a backlog piles up (sources only), then while its Redis sink drains it',
  async run(ctx: BenchContext): Promise<BenchRow[]> {
    const events = Math.ceil(ctx.option('backlog-events', ctx.quick ? 50_000 : 1_000_000) / TRANSACTION_ROWS) * TRANSACTION_ROWS;
    const [pg, redis] = await Promise.all([ctx.postgres(), ctx.redis()]);
    const admin = new Client({ connectionString: pg.url });
    await admin.connect();
    await admin.query('DROP DATABASE IF EXISTS bench_backlog WITH (FORCE)');
    await admin.query('CREATE DATABASE bench_backlog');
    await admin.end();
    const url = pg.url.replace(/\/[^/]*$/, '/bench_backlog');
    const db = new Client({ connectionString: url });
    await db.connect();
    await db.query(ITEMS);
    const dir = mkdtempSync(join(tmpdir(), 'bench-memory-'));
    const httpPort = await freePort();
    const config = writeConfig(join(dir, 'cdc.yaml'), `service: { name: backlog, dataDir: ./var, http: { port: ${httpPort} } }
log: { type: embedded, partitions: 8 }
sources:
  - { name: backlog, type: postgres, url: "\${PG_URL}", tables: [public.items], snapshot: { mode: never } }
sinks:
  - { name: cache, type: redis, url: "\${REDIS_URL}", keyPrefix: "backlog:", tables: ["*"] }
`);
    const env = { PG_URL: url, REDIS_URL: redis.url, ...profiledChildEnv() };
    try {
      // Phase 1: sources only; the backlog piles up in the log.
      const sources = new ServiceProcess(config, httpPort, env);
      await sources.start({ args: ['--only', 'sources'] });
      const ingestWatcher = new RssWatcher(sources.pid!);
      const ingestStarted = performance.now();
      for (let from = 1; from <= events; from += TRANSACTION_ROWS) {
        await db.query(`INSERT INTO items SELECT g, 'item ' || g, g % 1000, '2024-01-01'::timestamptz + g * interval '1 second'
                        FROM generate_series($1::int, $2::int) g`, [from, from + TRANSACTION_ROWS - 1]);
      }
      await until(async () => (await counter(sources, 'cdc_source_events_total')) >= events, 300_000, `${events} events in the log`, 200);
      const ingestRate = events / ((performance.now() - ingestStarted) / 1000);
      const ingestPeak = ingestWatcher.stop();
      await sources.stop();
      ctx.say(`  backlog of ${events} events in the log (${Math.round(ingestRate)}/s written and captured); peak RSS ${mb(ingestPeak)}`);

      // Phase 2: the whole service; the sink replays the backlog from offset zero.
      const service = new ServiceProcess(config, httpPort, env);
      await service.start();
      const drainWatcher = new RssWatcher(service.pid!);
      const processed = () => counter(service, 'cdc_sink_events_total', 'result="processed"');
      const atReady = await processed();
      const drainStarted = performance.now();
      await until(async () => (await processed()) >= events, 600_000, `the sink to apply ${events} events`);
      const drainRate = (events - atReady) / ((performance.now() - drainStarted) / 1000);
      const drainPeak = drainWatcher.stop();
      await service.stop();
      const check = new Redis(redis.url);
      const sample = JSON.parse((await check.get(`backlog:public.items:${events}`)) ?? 'null') as { id?: number } | null;
      check.disconnect();
      if (sample?.id !== events) throw new Error(`backlog:public.items:${events} is ${JSON.stringify(sample)} after the drain`);
      ctx.say(`  drained into Redis at ${Math.round(drainRate)}/s; peak RSS ${mb(drainPeak)}`);
      const raw = await rawPipelined(redis.url, events);
      return [{
        scenario: `6. backlog of ${events.toLocaleString('en-US')} events: log replay from offset 0 → Redis (the service)`,
        unit: 'events/s',
        ours: summarize([drainRate]),
        baseline: summarize([raw]),
        baselineName: 'ioredis pipelined SET (1,000 × 8), same documents',
        peakRssMb: Math.max(ingestPeak, drainPeak),
        notes: `one run; peak RSS ${mb(ingestPeak)} while the backlog piled up (sources only, ${Math.round(ingestRate).toLocaleString('en-US')} events/s captured), ${mb(drainPeak)} while the sink drained it`,
      }];
    } finally {
      await db.end();
      const flush = new Redis(redis.url);
      await flush.flushdb();
      flush.disconnect();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

if (require.main === module) main([memoryScenario]);
