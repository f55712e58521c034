// Memory probe of the scale scenario's large snapshot (bench/lib/scale-snapshot.ts)
// without the rest of the scale scenario: fills a 5-column table of N rows, runs
// `cdc run --only sources` on it (8 partitions) and prints, every 2 s, the
// rows in the log, VmHWM, VmRSS and RssAnon; with BENCH_MEMORY_TRACE=<file> the
// service also writes its V8 heap spaces each second (lib/memory-trace-preload).
// node dist/bench/snapshot-memory.js [rows] [extra yaml for log:] (env BENCH_PARTITIONS, default 8; CDC_V8_FLAGS etc. pass through)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client } from 'pg';
import { freePort, startPostgres, stopAll } from '../test/support/servers';
import { ServiceProcess, writeConfig } from '../test/support/service-process';
import { freshDatabase } from './lib/fresh-database';
import { statusMb } from './lib/rss';

async function counter(service: ServiceProcess, name: string): Promise<number> {
  let sum = 0;
  for (const line of (await service.metrics()).split('\n')) if (line.startsWith(`${name}{`)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

async function run(): Promise<void> {
  const rows = Number(process.argv[2] ?? 3_000_000);
  const logExtra = process.argv[3] ?? '';
  const pg = await startPostgres();
  const url = await freshDatabase(pg.url, 'bench_snapshot_memory');
  const db = new Client({ connectionString: url });
  await db.connect();
  await db.query(`CREATE TABLE snap (id int PRIMARY KEY, name text, qty int, price numeric(10,2), updated_at timestamptz(6))`);
  for (let from = 1; from <= rows; from += 1_000_000) {
    const to = Math.min(rows, from + 999_999);
    await db.query(`INSERT INTO snap SELECT g, 'item ' || g, g % 1000, (g % 100000) / 100.0, '2024-01-01'::timestamptz + g * interval '1.000001 second' FROM generate_series(${from}, ${to}) g`);
  }
  await db.query('VACUUM ANALYZE snap');
  await db.end();
  const dir = mkdtempSync(join(tmpdir(), 'bench-snapshot-memory-'));
  const httpPort = await freePort();
  const config = writeConfig(join(dir, 'cdc.yaml'), `service: { name: scale, dataDir: ./var, http: { port: ${httpPort} } }
log: { type: embedded, partitions: ${process.env.BENCH_PARTITIONS ?? 8} ${logExtra} }
sources:
  - { name: snap, type: postgres, url: "\${PG_URL}", tables: [public.snap], slot: scale_snap, publication: scale_snap, snapshot: { mode: initial } }
`);
  const env: NodeJS.ProcessEnv = { PG_URL: url };
  if (process.env.BENCH_MEMORY_TRACE) env.NODE_OPTIONS = [process.env.NODE_OPTIONS, `--require ${join(__dirname, 'lib', 'memory-trace-preload.js')}`].filter(Boolean).join(' ');
  const service = new ServiceProcess(config, httpPort, env);
  const started = performance.now();
  try {
    await service.start({ args: ['--only', 'sources'] });
    const pid = service.pid!;
    const quarters: string[] = [];
    for (let done = 0; done < rows;) {
      await new Promise((resolve) => setTimeout(resolve, 2000));
      done = await counter(service, 'cdc_source_events_total').catch(() => done); // a busy service may drop a scrape
      const hwm = Math.round(statusMb(pid, 'VmHWM') ?? 0);
      const rss = Math.round(statusMb(pid, 'VmRSS') ?? 0);
      const anon = Math.round(statusMb(pid, 'RssAnon') ?? 0);
      console.log(`t=${((performance.now() - started) / 1000).toFixed(0)}s rows=${done} (${Math.floor((done / rows) * 100)}%) VmHWM=${hwm} VmRSS=${rss} RssAnon=${anon}`);
      while (quarters.length < 4 && done >= rows * (quarters.length + 1) * 0.25) quarters.push(`${hwm}/${anon}`);
    }
    console.log(`quarters VmHWM/RssAnon: ${quarters.join('  ')}; ${((performance.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    await service.stop();
    rmSync(dir, { recursive: true, force: true });
    await stopAll();
  }
}

run().catch((error) => {
  console.error(error);
  process.exit(1);
});
