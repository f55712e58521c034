import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { EXPECTED_ROWS, PgRedisFixture } from '../support/pg-redis-fixture';
import { PgServer, RedisServer, startPostgres, startRedis, stopAll } from '../support/servers';
import { waitFor } from '../support/wait';

// Issue 12.3: a Postgres table that joins the capture later (added to `tables`, or created
// under a `schema.*` pattern while the service runs) gets its existing rows and its changes.
describe('source history: Postgres tables that join the capture later', function () {
  this.timeout(180_000);
  let pg: PgServer;
  let redis: RedisServer;
  let fixture: PgRedisFixture;

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    fixture = new PgRedisFixture(pg, redis, 'latetables', { expectedRows: { customers: EXPECTED_ROWS.customers, orders: EXPECTED_ROWS.orders } });
    await fixture.setUp();
  });
  after(async () => {
    await fixture?.tearDown();
    await stopAll();
  });

  const setTables = (tables: string) => {
    const config = readFileSync(fixture.service.configPath, 'utf8');
    writeFileSync(fixture.service.configPath, config.replace(/tables: \[public[^\]]*\]/, `tables: [${tables}]`));
  };
  const converge = (what: string) => waitFor(async () => (await fixture.difference()) === '', { timeoutMs: 60_000, what, describe: () => fixture.difference() });

  /** How Redis differs from Postgres for the table `late` ('' when equal). */
  const lateDifference = async () => {
    const expected = new Map((await fixture.sql(`SELECT id::text AS k, json_build_object('id', id, 'v', v)::text AS doc FROM late`)).map((r) => [`${fixture.prefix}public.late:${r.k}`, JSON.parse(r.doc as string)]));
    const keys = await fixture.redis.keys(`${fixture.prefix}public.late:*`);
    const values = keys.length ? await fixture.redis.mget(keys) : [];
    const problems: string[] = [];
    keys.forEach((key, i) => {
      if (!expected.has(key)) problems.push(`extra ${key}`);
      else if (!isDeepStrictEqual(expected.get(key), JSON.parse(values[i]!))) problems.push(`different ${key}`);
    });
    for (const key of expected.keys()) if (!keys.includes(key)) problems.push(`missing ${key}`);
    return problems.length ? `${problems.length} difference(s): ${problems.slice(0, 5).join('; ')}` : '';
  };

  it('a table added to `tables` (config change + restart) gets its existing rows and later changes', async () => {
    setTables('public.customers');
    await fixture.sql(`INSERT INTO customers (id, name) SELECT g, 'c' || g FROM generate_series(1, 50) g`);
    await fixture.sql(`INSERT INTO orders SELECT g, g % 50 + 1, 'before capture ' || g FROM generate_series(1, 100) g`);
    await fixture.service.start();
    await waitFor(async () => (await fixture.redis.keys(`${fixture.prefix}public.customers:*`)).length === 50, { timeoutMs: 30_000, what: 'customers in Redis' });
    await fixture.sql(`UPDATE orders SET note = 'changed while not captured' WHERE id <= 10`);
    assert.equal(await fixture.service.stop(), 0);

    setTables('public.customers, public.orders');
    await fixture.sql(`INSERT INTO orders SELECT g, 1, 'while stopped ' || g FROM generate_series(101, 120) g`);
    await fixture.service.start();
    await converge('orders (added to tables) to reach Redis');
    assert.ok(fixture.service.output.some((l) => /tables joined the capture.*public\.orders/.test(l)), fixture.service.recentOutput());
    await fixture.sql(`UPDATE orders SET note = 'after joining' WHERE id % 7 = 0; DELETE FROM orders WHERE id > 110`);
    await converge('later changes of the joined table');
    assert.equal(await fixture.service.stop(), 0);
  });

  it('a table created under a `schema.*` pattern while the service runs gets its rows and its changes', async () => {
    setTables('public.*');
    await fixture.service.start();
    await converge('the existing tables after the switch to public.*');
    const createdAt = Date.now();
    await fixture.sql(`CREATE TABLE late (id int PRIMARY KEY, v text); INSERT INTO late SELECT g, 'v' || g FROM generate_series(1, 200) g`);
    await waitFor(async () => (await lateDifference()) === '', { timeoutMs: 30_000, what: 'rows of the new table in Redis', describe: lateDifference });
    console.log(`      rows of a table created under public.* in Redis ${Date.now() - createdAt} ms after CREATE TABLE`);
    await fixture.sql(`UPDATE late SET v = 'changed' WHERE id % 3 = 0; DELETE FROM late WHERE id > 150; INSERT INTO late VALUES (1000, 'later')`);
    await waitFor(async () => (await lateDifference()) === '', { timeoutMs: 30_000, what: 'later changes of the new table', describe: lateDifference });
    assert.equal(await fixture.service.stop(), 0);
  });
});
