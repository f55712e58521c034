import { strict as assert } from 'node:assert';
import { KafkaE2eLog } from '../support/e2e-log';
import { PgRedisFixture } from '../support/pg-redis-fixture';
import { PgServer, RedisServer, startPostgres, startRedis, stopAll } from '../support/servers';
import { runCli } from '../support/service-process';
import { waitFor } from '../support/wait';

/** The same pause and resume on the Kafka log: the resume rewinds the consumer group to the held offsets. */
describe('cdc pause|resume on the Kafka log (librdkafka mock cluster)', function () {
  this.timeout(180_000);
  let pg: PgServer;
  let redis: RedisServer;
  const kafka = new KafkaE2eLog();
  let fixture: PgRedisFixture;

  before(async function () {
    try {
      [pg, redis] = await Promise.all([startPostgres(), startRedis(), kafka.setUp(['pausekafka'])]);
    } catch (error) {
      console.log(`    skipped: ${(error as Error).message}`);
      return this.skip();
    }
    fixture = new PgRedisFixture(pg, redis, 'pausekafka', { log: kafka.yaml() });
    await fixture.setUp();
    await fixture.sql(`INSERT INTO customers (id, name) SELECT g, 'c' || g FROM generate_series(1, 10) g; INSERT INTO orders SELECT g, g, 'v0' FROM generate_series(1, 10) g;`);
    await fixture.service.start();
    await converge('the bootstrap snapshot');
  });
  after(async () => {
    await fixture?.tearDown();
    await kafka.tearDown();
    await stopAll();
  });

  const converge = (what: string) => waitFor(async () => (await fixture.difference()) === '', { timeoutMs: 60_000, intervalMs: 300, what, describe: () => fixture.difference() });
  const cli = (...args: string[]) => runCli([...args, '-c', fixture.service.configPath], fixture.service.env);
  const get = async (key: string) => JSON.parse((await fixture.redis.get(`${fixture.prefix}public.${key}`)) ?? 'null');

  it('holds the paused table while another flows, and applies its changes on resume', async () => {
    assert.equal(cli('pause', '--table', 'public.orders').code, 0);
    for (let i = 1; i <= 10; i++) await fixture.sql(`UPDATE orders SET note = 'v${i}' WHERE id = 1`);
    await fixture.sql(`INSERT INTO orders VALUES (50, 1, 'new'); DELETE FROM orders WHERE id = 2; UPDATE customers SET name = 'flows' WHERE id = 1`);
    await waitFor(async () => (await get('customers:1'))?.name === 'flows', { timeoutMs: 30_000, what: 'the unpaused table to flow' });
    assert.equal((await get('orders:1'))?.note, 'v0');
    assert.equal(await get('orders:50'), null);
    const resumed = cli('resume', '--table', 'public.orders');
    assert.equal(resumed.code, 0, resumed.stderr);
    await converge('the held changes after the resume');
    assert.equal((await get('orders:1'))?.note, 'v10');
  });
});
