import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import { PgRedisFixture } from '../support/pg-redis-fixture';
import { PgServer, RedisServer, startPostgres, startRedis, stopAll } from '../support/servers';
import { runCli } from '../support/service-process';
import { waitFor } from '../support/wait';

describe('cdc pause|resume: one table held back without stopping the pipeline (Postgres → log → Redis)', function () {
  this.timeout(180_000);
  let pg: PgServer;
  let redisServer: RedisServer;
  let fixture: PgRedisFixture;

  before(async () => {
    [pg, redisServer] = await Promise.all([startPostgres(), startRedis()]);
    fixture = new PgRedisFixture(pg, redisServer, 'pausetest');
    await fixture.setUp();
    await fixture.sql(`INSERT INTO customers (id, name, balance) SELECT g, 'c' || g, g FROM generate_series(1, 20) g;
                       INSERT INTO orders SELECT g, g, 'v0' FROM generate_series(1, 20) g;`);
    await fixture.service.start();
    await converge('the bootstrap snapshot');
  });
  after(async () => {
    await fixture?.tearDown();
    await stopAll();
  });

  const converge = (what: string) => waitFor(async () => (await fixture.difference()) === '', { timeoutMs: 60_000, intervalMs: 200, what, describe: () => fixture.difference() });
  const cli = (...args: string[]) => runCli([...args, '-c', fixture.service.configPath], fixture.service.env);
  const redisOrder = async (id: number) => JSON.parse((await fixture.redis.get(`${fixture.prefix}public.orders:${id}`)) ?? 'null') as { note: string } | null;
  const redisCustomer = async (id: number) => JSON.parse((await fixture.redis.get(`${fixture.prefix}public.customers:${id}`)) ?? 'null') as { name: string } | null;

  it('holds a paused table while the others flow, keeps the pause over a restart, and applies the held changes in order on resume', async () => {
    const paused = cli('pause', '--table', 'public.orders', '--json');
    assert.equal(paused.code, 0, paused.stderr);
    assert.deepEqual(JSON.parse(paused.stdout).paused.map((p: { table: string; sink: string | null }) => [p.table, p.sink]), [['public.orders', null]]);

    // Twenty updates of one order, a new order and a deleted one, while another table keeps moving.
    for (let i = 1; i <= 20; i++) await fixture.sql(`UPDATE orders SET note = 'v${i}' WHERE id = 1`);
    await fixture.sql(`INSERT INTO orders VALUES (100, 1, 'new'); DELETE FROM orders WHERE id = 2`);
    await fixture.sql(`UPDATE customers SET name = 'flowing' WHERE id = 1`);
    await waitFor(async () => (await redisCustomer(1))?.name === 'flowing', { timeoutMs: 30_000, what: 'the unpaused table to flow' });
    assert.equal((await redisOrder(1))?.note, 'v0', 'the paused table must not move');
    assert.equal(await redisOrder(100), null);
    assert.notEqual(await redisOrder(2), null);

    // The held changes stay in the log: a consumer pinned at them keeps compaction from dropping a held delete.
    const pin = JSON.parse(readFileSync(join(fixture.dataDir, 'var', 'log', 'consumers', 'sink-cache.held.json'), 'utf8'));
    assert.ok(pin, 'sink-cache.held pins the held offsets');

    const status = cli('status', '--json');
    assert.equal(status.code, 0, status.stderr);
    const pausedTables = JSON.parse(status.stdout).pausedTables as Array<{ table: string; heldEvents: number }>;
    assert.equal(pausedTables.length, 1);
    assert.equal(pausedTables[0].table, 'public.orders');
    assert.ok(pausedTables[0].heldEvents >= 22, `held events in status: ${pausedTables[0].heldEvents}`);

    const reprocess = cli('reprocess', '--sink', 'cache');
    assert.equal(reprocess.code, 1);
    assert.match(reprocess.stderr, /sink cache has paused tables \(public\.orders\): a new generation would not hold their rows; resume them first/);

    // A restart keeps the pause: new changes of the paused table still wait, the other table flows.
    assert.equal(await fixture.service.stop(), 0);
    await fixture.service.start();
    await fixture.sql(`UPDATE orders SET note = 'v21' WHERE id = 1; UPDATE customers SET name = 'after restart' WHERE id = 2`);
    await waitFor(async () => (await redisCustomer(2))?.name === 'after restart', { timeoutMs: 30_000, what: 'the unpaused table to flow after the restart' });
    assert.equal((await redisOrder(1))?.note, 'v0', 'the paused table must stay paused over a restart');
    assert.match(cli('status').stdout, /public\.orders.*paused/);

    // Resume: every held change arrives, in order, and Redis equals Postgres.
    const monitor = new Redis(redisServer.url);
    const notes: string[] = [];
    const watcher = await monitor.monitor();
    watcher.on('monitor', (_time: string, args: string[]) => {
      // MONITOR shows the sink's script call (up to 100 changes of several rows), then the writes the script
      // made: the writes to the row's key are what a reader sees.
      if (!/^set$/i.test(args[0] ?? '') || !args[1]?.endsWith('public.orders:1')) return;
      const note = /"note":"(v\d+)"/.exec(args[2] ?? '')?.[1];
      if (note) notes.push(note);
    });
    const resumed = cli('resume', '--table', 'public.orders');
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, /resumed public\.orders for every sink/);
    await converge('the held changes to arrive after the resume');
    watcher.disconnect();
    monitor.disconnect();
    assert.equal((await redisOrder(1))?.note, 'v21');
    assert.ok(notes.length > 0, 'the resumed changes were written');
    console.log(`      writes of orders:1 seen by Redis MONITOR during the resume: ${notes.join(',')}`);
    const numbers = notes.map((n) => Number(n.slice(1)));
    assert.deepEqual(numbers, [...numbers].sort((a, b) => a - b), `writes of orders:1 in order: ${notes.join(',')}`);

    const after = JSON.parse(cli('status', '--json').stdout);
    assert.deepEqual(after.pausedTables, []);
    // New changes flow at once after the resume.
    await fixture.sql(`UPDATE orders SET note = 'live' WHERE id = 3`);
    await waitFor(async () => (await redisOrder(3))?.note === 'live', { timeoutMs: 30_000, what: 'a resumed table to flow' });
  });

  it('loses nothing when the service is killed (kill -9) right after a resume, while the held changes replay', async () => {
    assert.equal(cli('pause', '--table', 'public.orders', '--sink', 'cache').code, 0);
    await fixture.sql(`INSERT INTO orders SELECT g, g, 'paused ' || g FROM generate_series(200, 1200) g; DELETE FROM orders WHERE id = 3`);
    for (let i = 0; i < 10; i++) await fixture.sql(`UPDATE orders SET note = 'late ${i}' WHERE id = 200 + ${i}`);
    await fixture.sql(`UPDATE customers SET name = 'before the crash' WHERE id = 3`);
    await waitFor(async () => (await redisCustomer(3))?.name === 'before the crash', { timeoutMs: 30_000, what: 'the unpaused table to flow' });
    assert.equal(await redisOrder(1200), null);
    assert.equal(cli('resume', '--table', 'public.orders', '--sink', 'cache').code, 0);
    await fixture.service.kill9();
    await fixture.service.start();
    await converge('every held change after a crash during the replay');
  });

  it('refuses an unknown table or sink with what is configured', () => {
    const table = cli('pause', '--table', 'public.nope');
    assert.equal(table.code, 1);
    assert.match(table.stderr, /public\.nope is not captured by any source \(captured: public\.customers, public\.orders, public\.order_items\)/);
    const sink = cli('pause', '--table', 'public.orders', '--sink', 'nope');
    assert.equal(sink.code, 1);
    assert.match(sink.stderr, /no sink named "nope" \(configured: cache\)/);
    const notPaused = cli('resume', '--table', 'public.orders');
    assert.equal(notPaused.code, 1);
    assert.match(notPaused.stderr, /public\.orders is not paused/);
  });
});
