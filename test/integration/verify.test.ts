import { strict as assert } from 'node:assert';
import { PgRedisFixture } from '../support/pg-redis-fixture';
import { PgServer, RedisServer, startPostgres, startRedis, stopAll } from '../support/servers';
import { runCli } from '../support/service-process';
import { waitFor } from '../support/wait';

describe('cdc verify (Postgres source vs Redis sink)', function () {
  this.timeout(120_000);
  let pg: PgServer;
  let redis: RedisServer;
  let fixture: PgRedisFixture;

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    fixture = new PgRedisFixture(pg, redis, 'verify');
    await fixture.setUp();
    await fixture.service.start();
    await fixture.sql(`INSERT INTO customers (id, name, balance) SELECT g, 'customer ' || g, g * 1.25 FROM generate_series(1, 2500) g`);
    await fixture.sql(`INSERT INTO orders SELECT g, g % 100, 'note ''' || g || ':' FROM generate_series(1, 1200) g`);
    await fixture.sql(`INSERT INTO order_items SELECT g / 3, g % 3, g FROM generate_series(3, 900) g`);
    await converge('the initial rows');
  });
  after(async () => {
    await fixture?.tearDown();
    await stopAll();
  });

  function converge(what: string): Promise<void> {
    return waitFor(async () => (await fixture.difference()) === '', { timeoutMs: 60_000, intervalMs: 200, what, describe: () => fixture.difference() });
  }

  function verify(...args: string[]) {
    return runCli(['verify', '-c', fixture.service.configPath, ...args], fixture.service.env);
  }

  it('reports no differences when the sink equals the source', () => {
    const result = verify();
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.match(result.stdout, /sink cache, table public\.customers: 2500 source rows compared, no differences/);
    assert.match(result.stdout, /table public\.order_items: 898 source rows compared, no differences/);
    assert.match(result.stdout, /verify: no differences/);
  });

  it('finds rows deleted and changed behind the pipeline\'s back, and --repair resyncs exactly those keys', async () => {
    const p = fixture.prefix;
    await fixture.redis.del(`${p}public.customers:17`, `${p}public.customers:2001`, `${p}public.order_items:5:1`);
    await fixture.redis.set(`${p}public.orders:42`, JSON.stringify({ id: '42', customer_id: 42, note: 'stale' }));
    // A row the source does not have, written as the sink would.
    await fixture.redis.hset(`${p}__cdc_versions:public.orders`, '99999', '00000001' + '0'.repeat(24));
    await fixture.redis.set(`${p}public.orders:99999`, JSON.stringify({ id: '99999', customer_id: 1, note: 'ghost' }));

    const found = verify('--sink', 'cache');
    assert.equal(found.code, 2, found.stderr + found.stdout);
    const lines = found.stdout.split('\n').filter((l) => /^\s+(missing|extra|different) /.test(l)).map((l) => l.trim()).sort();
    assert.deepEqual(lines, [
      'different public.orders:42',
      'extra public.orders:99999',
      'missing public.customers:17',
      'missing public.customers:2001',
      'missing public.order_items:5:1',
    ]);

    const onlyOrders = verify('--table', 'public.orders');
    assert.doesNotMatch(onlyOrders.stdout, /customers/);
    assert.match(onlyOrders.stdout, /1 extra, 1 different/);

    const repaired = verify('--repair');
    assert.equal(repaired.code, 2, repaired.stderr + repaired.stdout);
    assert.match(repaired.stdout, /repair: resync [0-9a-f-]{36} queued for 2 key\(s\) of public\.customers/);
    assert.match(repaired.stdout, /repair: deleted 1 extra key\(s\) of public\.orders the source does not have/);
    assert.equal(await fixture.redis.exists(`${p}public.orders:99999`), 0, 'the extra key is gone');
    await converge('the repaired sink');
    await waitFor(() => verify().code === 0, { timeoutMs: 30_000, intervalMs: 500, what: 'verify to report no differences', describe: () => verify().stdout });
  });
});
