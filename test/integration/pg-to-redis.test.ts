import { strict as assert } from 'node:assert';
import { E2eLog, EmbeddedE2eLog, KafkaE2eLog } from '../support/e2e-log';
import { consumeUntilCaughtUp } from '../support/log-reader';
import { PgRedisFixture } from '../support/pg-redis-fixture';
import { PgServer, RedisServer, startPostgres, startRedis, stopAll } from '../support/servers';
import { waitFor } from '../support/wait';
import { TRUNCATED_FIELD } from '../../sinks/redis/scripts';
import { parseLsn } from '../../connectors/postgres/lsn';

// The same end-to-end tests with each log backend: `log: { type: embedded }` and `log: { type: kafka }`.
let pg: PgServer;
let redis: RedisServer;

describe('Postgres → log → Redis, end to end', function () {
  this.timeout(120_000);
  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
  });
  after(async () => stopAll());

  describeEndToEnd(new EmbeddedE2eLog(), 'shop');
  describeEndToEnd(new KafkaE2eLog(), 'kshop');
});

function describeEndToEnd(log: E2eLog, namePrefix: string): void {
  describe(`with the ${log.type} log`, function () {
    let fixture: PgRedisFixture;
    let testNumber = 0;

    before(async () => log.setUp([1, 2, 3].map((n) => `${namePrefix}${n}`)));
    after(async () => log.tearDown());

    beforeEach(async () => {
      fixture = new PgRedisFixture(pg, redis, `${namePrefix}${++testNumber}`, { log: log.yaml() });
      await fixture.setUp();
    });
    afterEach(async () => fixture.tearDown());

    const converge = (what: string, timeoutMs = 20_000) =>
      waitFor(async () => (await fixture.difference()) === '', { timeoutMs, what, describe: () => fixture.difference() });

    it('applies inserts, updates and deletes of several tables (one with a composite key) within a second of commit', async () => {
      await fixture.service.start();
      await fixture.sql(`INSERT INTO customers (id, name, balance) VALUES (1, 'Ada', 10.50), (2, 'Grace', 0), (3, 'Linus', -3.25)`);
      await fixture.sql(`INSERT INTO orders VALUES (9007199254740993, 1, 'bigger than 2^53'), (2, 2, NULL)`);
      await fixture.sql(`INSERT INTO order_items VALUES (9007199254740993, 1, 5), (9007199254740993, 2, 7), (2, 1, 1)`);
      await fixture.sql(`UPDATE customers SET name = 'Ada Lovelace', n = n + 1, updated_at = '2024-02-29 12:34:56.123456+00' WHERE id = 1`);
      await fixture.sql(`UPDATE order_items SET qty = 6 WHERE order_id = 9007199254740993 AND line_no = 1`);
      await fixture.sql(`DELETE FROM customers WHERE id = 3`);
      await fixture.sql(`DELETE FROM order_items WHERE order_id = 2 AND line_no = 1`);
      await fixture.sql(`UPDATE orders SET id = 3 WHERE id = 2`); // a primary-key change
      await converge('Redis to equal Postgres');

      const ada = JSON.parse((await fixture.redis.get(`${fixture.prefix}public.customers:1`))!);
      assert.deepEqual(ada, { id: 1, name: 'Ada Lovelace', balance: '10.50', n: 1, updated_at: '2024-02-29T12:34:56.123456Z' });
      assert.equal(await fixture.redis.exists(`${fixture.prefix}public.customers:3`), 0, 'a deleted row has no key');
      assert.equal(await fixture.redis.exists(`${fixture.prefix}public.orders:2`), 0, 'the old key of a row whose key changed is gone');
      assert.ok(await fixture.redis.exists(`${fixture.prefix}public.order_items:9007199254740993:2`), 'composite keys are joined by ":"');

      // Latency: one committed row is readable in Redis within a second.
      const committedAt = Date.now();
      await fixture.sql(`INSERT INTO customers (id, name) VALUES (100, 'latency probe')`);
      await waitFor(async () => (await fixture.redis.exists(`${fixture.prefix}public.customers:100`)) === 1, {
        timeoutMs: 1000,
        intervalMs: 5,
        what: 'a committed row to appear in Redis within a second',
      });
      const latencyMs = Date.now() - committedAt;
      assert.ok(latencyMs < 1000, `commit → Redis took ${latencyMs} ms`);

      assert.equal(await fixture.service.stop(), 0, 'SIGTERM stops the service cleanly with exit code 0');
      assert.match(fixture.service.recentOutput(), /service stopped/);
    });

    it('loses nothing when the service is killed with kill -9 in the middle of a stream of writes', async () => {
      await fixture.service.start();
      const committed = new Map<number, number>(); // customer id → last committed n
      let writing = true;
      const writer = (async () => {
        for (let i = 0; writing || i < 400; i++) {
          const id = 1 + (i % 50);
          if (i % 17 === 16) {
            await fixture.sql('DELETE FROM customers WHERE id = $1', [id]);
            committed.delete(id);
            continue;
          }
          const rows = await fixture.sql(
            `INSERT INTO customers (id, name, n) VALUES ($1, $2, 0)
             ON CONFLICT (id) DO UPDATE SET n = customers.n + 1, updated_at = now() RETURNING n`,
            [id, `customer ${id}`],
          );
          committed.set(id, rows[0].n as number);
          if (i % 25 === 0) await fixture.sql(`INSERT INTO order_items VALUES ($1, 1, $2) ON CONFLICT (order_id, line_no) DO UPDATE SET qty = EXCLUDED.qty`, [id, i]);
        }
      })();
      await new Promise((resolve) => setTimeout(resolve, 700));
      await fixture.service.kill9();
      await new Promise((resolve) => setTimeout(resolve, 300));
      await fixture.service.start();
      writing = false;
      await writer;
      await converge('Redis to equal Postgres after kill -9 and restart', 30_000);
      await fixture.service.stop();

      // Every committed change of every customer is in the log: n counts 0, 1, 2, ... per row lifetime,
      // so a lost event shows up as a gap before the last committed n.
      const logClient = await log.open(fixture);
      const seen = new Map<number, Set<number>>();
      try {
        for (const { event } of (await consumeUntilCaughtUp(logClient, 'e2e-check')).flat()) {
          if (event.source.table !== 'customers' || !event.after) continue;
          const id = event.after.id as number;
          if (!seen.has(id)) seen.set(id, new Set());
          seen.get(id)!.add(event.after.n as number);
        }
      } finally {
        await logClient.close();
      }
      for (const [id, lastN] of committed) {
        for (let n = 0; n <= lastN; n++) assert.ok(seen.get(id)?.has(n), `customer ${id}: the change that set n=${n} is missing from the log`);
      }
      assert.ok(committed.size > 0);
    });

    it('leaves Redis unchanged when the whole log is replayed into it again', async () => {
      await fixture.service.start();
      for (let i = 1; i <= 30; i++) await fixture.sql(`INSERT INTO customers (id, name) VALUES ($1, $2)`, [i, `customer ${i}`]);
      await fixture.sql(`UPDATE customers SET n = n + 1 WHERE id % 3 = 0`);
      await fixture.sql(`DELETE FROM customers WHERE id % 5 = 0`);
      const [{ lsn }] = await fixture.sql(`SELECT pg_current_wal_lsn()::text AS lsn`);
      await fixture.sql(`TRUNCATE order_items`);
      await converge('Redis to equal Postgres');
      // order_items was empty, so the rows converge before the TRUNCATE lands. Wait for its stamp too:
      // a TRUNCATE still in flight at stop would be applied by the replay, and the stamps would differ.
      const truncateLsn = parseLsn(lsn as string);
      await waitFor(
        async () => {
          const stamp = await fixture.redis.hget(`${fixture.prefix}__cdc_versions:public.order_items`, TRUNCATED_FIELD);
          return stamp !== null && BigInt(`0x${stamp.slice(0, 16)}`) >= truncateLsn;
        },
        { timeoutMs: 20_000, what: `the TRUNCATE of order_items (after ${lsn}) to be stamped in Redis` },
      );
      await fixture.service.stop();
      const everyKey = async () => {
        const keys = (await fixture.redis.keys(`${fixture.prefix}*`)).sort();
        const valueOf = async (k: string) => {
          const type = await fixture.redis.type(k);
          if (type === 'hash') return fixture.redis.hgetall(k);
          if (type === 'zset') return fixture.redis.call('ZRANGE', k, '0', '-1', 'WITHSCORES');
          if (type === 'set') return (await fixture.redis.smembers(k)).sort();
          if (type === 'list') return fixture.redis.lrange(k, 0, -1);
          return fixture.redis.get(k);
        };
        return Promise.all(keys.map(async (k) => [k, await valueOf(k)]));
      };
      const beforeReplay = await everyKey();

      // Forget the sink's committed offsets: on restart it replays the log from offset zero.
      const logClient = await log.open(fixture);
      const ends = await logClient.endOffsets();
      await Promise.all(ends.map((_, p) => logClient.commit('sink-cache', p, 0)));
      await logClient.close();
      await fixture.service.start();
      await waitFor(async () => JSON.stringify(await log.committed(fixture, 'sink-cache')) === JSON.stringify(ends), {
        timeoutMs: 20_000,
        what: `the sink to replay the log up to ${ends.join(',')}`,
      });
      assert.deepEqual(await everyKey(), beforeReplay);
    });
  });
}
