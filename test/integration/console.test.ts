import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Browser, chromium, Page } from 'playwright-core';
import { ChangeEvent } from '../../core/event/change-event';
import { DeadLetterStore } from '../../sinks/shared/dead-letters';
import { ensureBinary, findBinary } from '../support/ensure-binary';
import { packageRoot } from '../support/kafka';
import { PgRedisFixture } from '../support/pg-redis-fixture';
import { PgServer, RedisServer, startPostgres, startRedis, stopAll } from '../support/servers';
import { waitFor } from '../support/wait';

const SCHEMA = {
  schema: `CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance int NOT NULL);
           INSERT INTO accounts SELECT g, 'owner ' || g, g FROM generate_series(1, 60000) g;
           CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, note text);
           INSERT INTO orders SELECT g, g, 'v0' FROM generate_series(1, 50) g;
           ANALYZE accounts;`,
  expectedRows: {
    accounts: `SELECT id::text AS k, to_jsonb(accounts)::text AS doc FROM accounts`,
    orders: `SELECT id::text AS k, json_build_object('id', id::text, 'customer_id', customer_id, 'note', note)::text AS doc FROM orders`,
  },
  sourceOptions: 'snapshot: { chunkSize: 150 }',
};

const OUTPUT = join(packageRoot(), 'test-output', 'console');
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Sum of a metric's samples in Prometheus text, over the lines whose labels include `labels`. */
function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

describe('web console in a real browser (Chromium) against a running pipeline', function () {
  this.timeout(240_000);
  let pg: PgServer;
  let redis: RedisServer;
  let fixture: PgRedisFixture;
  let browser: Browser;
  let page: Page;
  let chromiumPath: string;

  before(async function () {
    try {
      chromiumPath = ensureBinary(['/usr/bin/chromium', 'chromium'], 'chromium');
    } catch (error) {
      console.log(`    skipped: ${(error as Error).message}`);
      this.skip();
    }
    mkdirSync(OUTPUT, { recursive: true });
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    fixture = new PgRedisFixture(pg, redis, 'consoletest', SCHEMA);
    await fixture.setUp();
    browser = await chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_FLAGS });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('response', (response) => response.status() >= 400 && problems.push(`${response.status()} ${response.url()}`));
    await fixture.service.start();
    await page.goto(`http://127.0.0.1:${fixture.service.httpPort}/`);
    await page.waitForSelector('[data-testid="sink-cache"]', { timeout: 20_000 });
    // The bootstrap snapshot, when the page is quicker than it.
    const snapshotBar = page.locator(`[data-testid="table-${source()}-public.accounts"] [data-testid="snapshot-bar"]`);
    const snapshotSeen = await snapshotBar.waitFor({ timeout: 5_000 }).then(() => true, () => false);
    if (snapshotSeen) {
      assert.equal(await page.locator(`[data-testid="node-source-${source()}"] [data-state]`).first().getAttribute('data-state'), 'snapshotting');
      await shot('0-snapshot-running');
    } else console.log('    the bootstrap snapshot was done before the page showed it: no snapshot screenshot');
    await waitFor(async () => (await fixture.difference()) === '', { timeoutMs: 90_000, intervalMs: 300, what: 'the bootstrap snapshot', describe: () => fixture.difference() });
    assert.deepEqual(problems, [], 'the page loads without script errors');
  });
  after(async () => {
    await browser?.close();
    await fixture?.tearDown();
    await stopAll();
  });

  const shot = (name: string) => page.screenshot({ path: join(OUTPUT, `${name}.png`), fullPage: true });
  const valueOf = async (selector: string) => Number(await page.locator(selector).first().getAttribute('data-value'));
  const source = () => `${fixture.name}-pg`;

  it('shows the pipeline with the numbers /metrics reports', async () => {
    await fixture.sql(`UPDATE orders SET note = 'seen' WHERE id <= 10`);
    await waitFor(async () => (await fixture.difference()) === '', { timeoutMs: 30_000, what: 'the updates to arrive' });
    let last = '';
    await waitFor(
      async () => {
        const metrics = await fixture.service.metrics();
        const expected = {
          sourceEvents: metricSum(metrics, 'cdc_source_events_total', { source: source() }),
          sinkEvents: metricSum(metrics, 'cdc_sink_events_total', { sink: 'cache' }),
          sinkLag: metricSum(metrics, 'cdc_sink_lag_events', { sink: 'cache' }),
          ends: [0, 1, 2, 3].map((p) => metricSum(metrics, 'cdc_log_end_offset', { partition: String(p) })),
        };
        const shown = {
          sourceEvents: await valueOf(`[data-testid="source-${source()}"] [data-testid="source-events"]`),
          sinkEvents: await valueOf('[data-testid="sink-cache"] [data-testid="sink-events"]'),
          sinkLag: await valueOf('[data-testid="sink-cache"] [data-testid="sink-lag-events"]'),
          ends: await Promise.all([0, 1, 2, 3].map((p) => valueOf(`[data-testid="log-end-${p}"]`))),
        };
        last = `page ${JSON.stringify(shown)} vs /metrics ${JSON.stringify(expected)}`;
        return JSON.stringify(shown) === JSON.stringify(expected) && expected.sinkEvents > 20_000;
      },
      { timeoutMs: 30_000, intervalMs: 500, what: 'the page to show the numbers of /metrics', describe: () => last },
    );
    assert.equal(await page.locator(`[data-testid="node-source-${source()}"] [data-state]`).first().getAttribute('data-state'), 'streaming');
    assert.equal(await page.locator('[data-testid="node-sink-cache"] [data-state]').first().getAttribute('data-state'), 'streaming');
    assert.match((await page.locator('[data-testid="log-size"]').textContent()) ?? '', /\d+(\.\d)? (KiB|MiB)/);
    await shot('1-overview');
  });

  it('starts a resync from the page and its progress bar reaches 100 %', async () => {
    // `cdc status --watch` on a terminal (script(1) gives it one) draws the same progress in place.
    const scriptBinary = findBinary(['script']);
    const watchOutput: Buffer[] = [];
    const cli = join(packageRoot(), 'dist', 'cli', 'main.js');
    const watcher = scriptBinary
      ? spawn(scriptBinary, ['-q', '-c', `${process.execPath} ${cli} status -c ${fixture.service.configPath} --watch 1`, '/dev/null'], {
          env: { ...process.env, ...fixture.service.env, COLUMNS: '120' },
          detached: true,
          stdio: ['pipe', 'pipe', 'pipe'],
        })
      : null;
    watcher?.stdout!.on('data', (chunk: Buffer) => watchOutput.push(chunk));
    if (!watcher) console.log('    script(1) not found (Debian bsdutils): cdc status --watch not checked on a terminal');
    else await waitFor(() => Buffer.concat(watchOutput).toString('utf8').includes('sink cache'), { timeoutMs: 30_000, what: 'cdc status --watch to draw its first screen' });
    const row = page.locator(`[data-testid="table-${source()}-public.accounts"]`);
    await row.locator('[data-testid="resync-button"]').click();
    await page.waitForSelector('[data-testid="message"]:has-text("request")', { timeout: 10_000 });
    assert.match((await page.locator('[data-testid="message"]').textContent()) ?? '', /resync public\.accounts: request [0-9a-f-]{36} queued/);
    const bar = page.locator('[data-testid="resync-request-bar"]').first();
    await bar.waitFor({ timeout: 10_000 });
    // While it runs, the table's own resync bar shows rows read so far.
    await row.locator('[data-testid="resync-bar"]').waitFor({ timeout: 20_000 }).then(() => shot('2-resync-running'), () => undefined);
    await waitFor(async () => (await bar.getAttribute('data-percent')) === '100', { timeoutMs: 120_000, intervalMs: 500, what: 'the resync progress bar to reach 100 %', describe: async () => `${await bar.getAttribute('data-percent')}; ${fixture.service.recentOutput(5)}` });
    assert.match((await page.locator('[data-testid^="resync-"][data-testid$="-public.accounts"] [data-state]').first().getAttribute('data-state')) ?? '', /done/);
    assert.ok(fixture.service.output.some((l) => l.includes('resync of table done')), 'the service finished the resync');
    await shot('3-resync-done');
    if (watcher) {
      process.kill(-watcher.pid!, 'SIGTERM');
      const text = Buffer.concat(watchOutput).toString('utf8');
      writeFileSync(join(OUTPUT, 'status-watch.txt'), text);
      assert.match(text, /\x1b\[H/, 'redraws from the top of the screen');
      assert.match(text, /public\.accounts\s+resync\s+\[█*░*\]\s+\d+\.\d %\s+\d+\/\d+ rows/, 'a resync progress bar');
      assert.match(text, /sink cache\s+streaming\s+lag \d+ events \/ \d+\.\d s/);
    }
  });

  it('resyncs only the rows of a WHERE, and cancels a running resync from the page', async () => {
    const row = page.locator(`[data-testid="table-${source()}-public.accounts"]`);
    const requestOf = async () => /request ([0-9a-f-]{36}) queued/.exec((await page.locator('[data-testid="message"]').textContent()) ?? '')?.[1];
    const earlier = await requestOf();
    await row.locator('[data-testid="resync-where"]').fill('id <= 500');
    await row.locator('[data-testid="resync-button"]').click();
    await waitFor(async () => !!(await requestOf()) && (await requestOf()) !== earlier, { timeoutMs: 10_000, what: 'the WHERE resync to be queued' });
    const limited = (await requestOf())!;
    const limitedRow = page.locator(`[data-testid="resync-${limited}-public.accounts"]`);
    await waitFor(async () => (await limitedRow.locator('[data-state]').getAttribute('data-state')) === 'done', { timeoutMs: 60_000, intervalMs: 300, what: 'the WHERE resync to finish' });
    assert.equal(await limitedRow.locator('td.num').textContent(), '500', 'a WHERE resync reads only its rows');

    await row.locator('[data-testid="resync-where"]').fill('');
    await row.locator('[data-testid="resync-button"]').click();
    await waitFor(async () => (await requestOf()) !== limited, { timeoutMs: 10_000, what: 'the second resync to be queued' });
    const full = (await requestOf())!;
    const fullRow = page.locator(`[data-testid="resync-${full}-public.accounts"]`);
    await fullRow.locator('button:has-text("Cancel")').click();
    await waitFor(async () => (await fullRow.locator('[data-state]').getAttribute('data-state')) === 'cancelled', {
      timeoutMs: 20_000,
      intervalMs: 300,
      what: 'the resync to show as cancelled',
      describe: async () => `${await page.locator('[data-testid="message"]').textContent()}`,
    });
    assert.match((await page.locator('[data-testid="message"]').textContent()) ?? '', new RegExp(`cancel resync ${full}: done`));
    await waitFor(async () => (await row.locator('[data-testid="resync-bar"]').count()) === 0, { timeoutMs: 10_000, what: "the table's resync bar to go once cancelled" });
    await shot('3b-resync-cancelled');
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.ok(!fixture.service.output.some((l) => l.includes('resync of table done') && l.includes(full)), 'a cancelled resync does not finish');
    assert.equal(await fullRow.locator('[data-state]').getAttribute('data-state'), 'cancelled');
  });

  it('pauses a table from the page: it stops moving while others flow, and resumes in order', async () => {
    const orders = page.locator('[data-testid="sink-table-cache-public.orders"]');
    await orders.locator('[data-testid="pause-button"]').click();
    await orders.locator('[data-state="paused"]').waitFor({ timeout: 10_000 });
    await fixture.sql(`UPDATE orders SET note = 'while paused' WHERE id = 1; UPDATE accounts SET owner = 'flows' WHERE id = 1`);
    await waitFor(async () => JSON.parse((await fixture.redis.get(`${fixture.prefix}public.accounts:1`)) ?? '{}').owner === 'flows', { timeoutMs: 30_000, what: 'the other table to flow' });
    assert.equal(JSON.parse((await fixture.redis.get(`${fixture.prefix}public.orders:1`))!).note, 'seen', 'the paused table does not move');
    await waitFor(async () => /[1-9]/.test((await orders.locator('td.num').textContent()) ?? ''), { timeoutMs: 10_000, what: 'held changes to show' });
    assert.equal(await page.locator('[data-testid="node-sink-cache"] [data-state]').first().getAttribute('data-state'), 'paused');
    await shot('4-paused');
    await orders.locator('[data-testid="resume-button"]').click();
    await orders.locator('[data-state="flowing"]').waitFor({ timeout: 10_000 });
    await waitFor(async () => (await fixture.difference()) === '', { timeoutMs: 60_000, intervalMs: 300, what: 'the held change to arrive', describe: () => fixture.difference() });
    assert.equal(JSON.parse((await fixture.redis.get(`${fixture.prefix}public.orders:1`))!).note, 'while paused');
  });

  it('reprocesses a sink from the page, with a progress bar, into a new generation', async () => {
    const generationBefore = Number(await page.locator('[data-testid="sink-cache"] td:nth-child(7)').textContent());
    page.once('dialog', (dialog) => void dialog.accept());
    await page.locator('[data-testid="sink-cache"] button:has-text("Reprocess")').click();
    await page.waitForSelector('[data-testid="message"]:has-text("reprocess cache")', { timeout: 10_000 });
    assert.match((await page.locator('[data-testid="message"]').textContent()) ?? '', /reprocess cache: building generation \d+ from log offset zero/);
    await page.locator('[data-testid="reprocess-bar"]').waitFor({ timeout: 10_000 }).then(() => shot('5-reprocess-running'), () => undefined);
    await waitFor(async () => Number(await page.locator('[data-testid="sink-cache"] td:nth-child(7)').textContent()) === generationBefore + 1, {
      timeoutMs: 120_000,
      intervalMs: 500,
      what: 'the new generation to go live',
      describe: () => fixture.service.recentOutput(5),
    });
    await waitFor(async () => (await fixture.difference()) === '', { timeoutMs: 30_000, what: 'Redis to equal Postgres after the reprocess', describe: () => fixture.difference() });
  });

  it('browses dead letters and draws the last hour', async () => {
    // What a sink writes when it cannot apply an event (Redis never does here; Elasticsearch and the warehouse do).
    const letters = new DeadLetterStore(join(fixture.dataDir, 'var'), 'cache');
    const event = (id: number): ChangeEvent => ({
      op: 'u', key: { id }, before: null, after: { id, note: 'x' }, ts_ms: Date.now(),
      source: { connector: 'postgresql', name: source(), db: fixture.name, schema: 'public', table: 'orders', position: '0/1', version: '1', ts_ms: Date.now() },
    });
    await letters.add([{ event: event(7), reason: 'mapper_parsing_exception: failed to parse field [note]' }, { event: event(8), reason: 'value too long for column note' }]);
    await page.locator('[data-testid="sink-cache"] [data-testid="dead-letters-button"]').click();
    await page.waitForSelector('h3:has-text("last 2 dead letters")', { timeout: 10_000 });
    await page.waitForSelector('td:has-text("value too long for column note")', { timeout: 10_000 });
    await page.waitForSelector('td:has-text("mapper_parsing_exception: failed to parse field [note]")', { timeout: 10_000 });
    await page.waitForSelector('[data-testid="chart-lag"] canvas', { timeout: 20_000 });
    await page.waitForSelector('[data-testid="chart-throughput"] canvas', { timeout: 20_000 });
    await shot('6-charts-and-dead-letters');
  });

  it('shows a sink that lost its server as reconnecting, with the last error, and streaming again once it is back', async () => {
    fixture.redis.on('error', () => undefined); // the test's own client reconnects quietly
    await redis.kill9();
    await fixture.sql(`UPDATE orders SET note = 'redis is down' WHERE id = 5`);
    const node = page.locator('[data-testid="node-sink-cache"]');
    await waitFor(async () => (await node.locator('[data-state]').first().getAttribute('data-state')) === 'reconnecting', { timeoutMs: 60_000, intervalMs: 500, what: 'the sink to show as reconnecting' });
    await node.locator('[data-testid="last-error"]').waitFor({ timeout: 30_000 });
    assert.ok(((await node.locator('[data-testid="last-error"]').textContent()) ?? '').length > 10, 'the last error is shown');
    await shot('7-sink-reconnecting');
    await redis.start(); // empty (no persistence): the sink reconnects and goes on from its committed offsets
    await waitFor(async () => (await node.locator('[data-state]').first().getAttribute('data-state')) === 'streaming', { timeoutMs: 60_000, intervalMs: 500, what: 'the sink to stream again' });
  });
});
