// Scale scenario, part 3: a large snapshot (10M rows; 1M with --quick) through
// the service (`cdc run --only sources`, as deployed) into its embedded log,
// beside psql `COPY TO STDOUT` of the same table in the same run. The
// service's peak RSS (VmHWM) is read when 25, 50, 75 and 100 % of the rows
// are in the log: memory must stay flat however large the table.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client } from 'pg';
import { freePort } from '../../test/support/servers';
import { ServiceProcess, writeConfig } from '../../test/support/service-process';
import { dropDatabase, freshDatabase } from './fresh-database';
import { BenchRow, repeat, summarize } from './report';
import { BenchContext, mb, profiledChildEnv, timeCommand } from './scenario';
import { peakRssMb, RssWatcher, statusMb } from './rss';

const QUARTERS = [0.25, 0.5, 0.75, 1] as const;
const FILL_CHUNK = 1_000_000;
const DATABASE = 'bench_scale_snapshot';

/** The snapshot scenario's five columns (int key, text, int, numeric, timestamp), filled a million rows per statement. */
async function prepare(ctx: BenchContext, baseUrl: string, rows: number): Promise<string> {
  const url = await freshDatabase(baseUrl, DATABASE);
  const db = new Client({ connectionString: url });
  await db.connect();
  try {
    await db.query(`CREATE TABLE snap (id int PRIMARY KEY, name text, qty int, price numeric(10,2), updated_at timestamptz(6))`);
    for (let from = 1; from <= rows; from += FILL_CHUNK) {
      const to = Math.min(rows, from + FILL_CHUNK - 1);
      await db.query(`INSERT INTO snap SELECT g, 'item ' || g, g % 1000, (g % 100000) / 100.0, '2024-01-01'::timestamptz + g * interval '1.000001 second'
                      FROM generate_series(${from}, ${to}) g`);
      ctx.say(`  snapshot table: ${to.toLocaleString('en-US')} of ${rows.toLocaleString('en-US')} rows written`);
    }
    await db.query('VACUUM ANALYZE snap'); // hint bits set: both readers see the same pages
  } finally {
    await db.end();
  }
  return url;
}

/** Sum of a Prometheus counter's series (the service's /metrics). */
async function counter(service: ServiceProcess, name: string): Promise<number> {
  let sum = 0;
  for (const line of (await service.metrics()).split('\n')) if (line.startsWith(`${name}{`)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

interface ServiceSnapshot {
  rate: number;
  seconds: number;
  readySeconds: number;
  /** VmHWM when 25, 50, 75, 100 % of the rows were in the log. */
  hwmAtQuarters: number[];
  /** RssAnon (heap, not mapped files) at the same moments: tells growing memory from mapped pages. */
  anonAtQuarters: number[];
  peak: number;
}

async function snapshotThroughService(ctx: BenchContext, url: string, rows: number): Promise<ServiceSnapshot> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-scale-snapshot-'));
  const httpPort = await freePort();
  const config = writeConfig(join(dir, 'cdc.yaml'), `service: { name: scale, dataDir: ./var, http: { port: ${httpPort} } }
log: { type: embedded, partitions: 8 }
sources:
  - { name: snap, type: postgres, url: "\${PG_URL}", tables: [public.snap], slot: scale_snap, publication: scale_snap, snapshot: { mode: initial } }
`);
  const service = new ServiceProcess(config, httpPort, { PG_URL: url, ...profiledChildEnv() });
  // A stuck snapshot must not hang the run: two minutes plus 5,000 rows/s at worst.
  const deadline = Date.now() + 120_000 + (rows / 5_000) * 1000;
  try {
    const started = performance.now();
    await service.start({ args: ['--only', 'sources'] });
    const readySeconds = (performance.now() - started) / 1000;
    const watcher = new RssWatcher(service.pid!);
    const hwmAtQuarters: number[] = [];
    const anonAtQuarters: number[] = [];
    let nextReport = 0.1;
    for (let done = 0; hwmAtQuarters.length < QUARTERS.length;) {
      if (Date.now() > deadline) throw new Error(`the snapshot of ${rows} rows was still at ${done} rows in the log when the time ran out; service output:\n${service.recentOutput()}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
      done = await counter(service, 'cdc_source_events_total');
      while (hwmAtQuarters.length < QUARTERS.length && done >= rows * QUARTERS[hwmAtQuarters.length]) {
        hwmAtQuarters.push(peakRssMb(service.pid!) ?? 0);
        anonAtQuarters.push(statusMb(service.pid!, 'RssAnon') ?? 0);
      }
      if (done >= rows * nextReport) {
        ctx.say(`  snapshot through the service: ${Math.floor((done / rows) * 100)} % (${Math.round(done / ((performance.now() - started) / 1000))} rows/s, VmHWM ${mb(peakRssMb(service.pid!) ?? 0)})`);
        while (done >= rows * nextReport) nextReport += 0.1;
      }
    }
    const elapsed = (performance.now() - started) / 1000;
    const peak = watcher.stop();
    return { rate: rows / elapsed, seconds: elapsed, readySeconds, hwmAtQuarters, anonAtQuarters, peak };
  } finally {
    await service.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function largeSnapshotRows(ctx: BenchContext, rows: number): Promise<BenchRow[]> {
  const pg = await ctx.postgres();
  const url = await prepare(ctx, pg.url, rows);
  const copy = await repeat(ctx.runs, async () => rows / (await timeCommand('psql', ['-X', '-q', '-d', url, '-c', 'COPY (SELECT * FROM snap) TO STDOUT'])));
  ctx.say(`  psql COPY TO STDOUT: ${Math.round(copy.median)} rows/s`);
  const ours = await snapshotThroughService(ctx, url, rows); // once: at 10M rows one run is minutes
  await dropDatabase(pg.url, DATABASE);
  const quarters = ours.hwmAtQuarters.map((value) => Math.round(value)).join(' / ');
  const anon = ours.anonAtQuarters.map((value) => Math.round(value)).join(' / ');
  const growth = ours.hwmAtQuarters[3] - ours.hwmAtQuarters[0];
  return [{
    scenario: `S3. Postgres snapshot → durable log through the service (${rows.toLocaleString('en-US')} rows)`,
    unit: 'rows/s',
    ours: summarize([ours.rate]),
    baseline: copy,
    baselineName: 'psql COPY TO STDOUT → /dev/null',
    peakRssMb: ours.peak,
    notes: `one run of ours (${ours.seconds.toFixed(0)} s, ${ours.readySeconds.toFixed(1)} s of it to /readyz); 5 columns, 8 partitions; ` +
      `VmHWM at 25/50/75/100 % of the rows: ${quarters} MB (${growth >= 0 ? '+' : ''}${Math.round(growth)} MB from 25 % to 100 %; RssAnon then ${anon} MB)`,
  }];
}
