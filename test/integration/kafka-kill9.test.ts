import { strict as assert } from 'node:assert';
import { KafkaE2eLog } from '../support/e2e-log';
import { PgRedisFixture } from '../support/pg-redis-fixture';
import { PgServer, RedisServer, startPostgres, startRedis, stopAll } from '../support/servers';
import { waitFor } from '../support/wait';

/**
 * kill -9 of the service under a write load on the Kafka log, and a restart at
 * once. The reported divergence (Redis rows different, extra, missing after
 * `Offset out of range, resetting to default offset`) came from the log
 * dropping records the sink had not read yet (the mock cluster keeps 5 MiB per
 * partition, like a topic with size retention), after which kafkajs silently
 * jumped to the earliest offset still held. Now the sink stops and says so.
 */
describe('Kafka log: kill -9 of the service under load', function () {
  this.timeout(180_000);
  let pg: PgServer;
  let redis: RedisServer;
  const kafka = new KafkaE2eLog();
  let fixture: PgRedisFixture | undefined;

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis(), kafka.setUp(['k9keep', 'k9gone'])]);
  });
  after(async () => {
    await kafka.tearDown();
    await stopAll();
  });
  afterEach(async () => {
    await fixture?.tearDown();
    fixture = undefined;
  });

  /** Small updates, inserts and deletes from two clients until stopped; returns how many statements ran. */
  function startLoad(f: PgRedisFixture): { stop(): Promise<number> } {
    let running = true;
    let statements = 0;
    const client = async (c: number) => {
      for (let i = 0; running; i++) {
        const id = 1 + ((i * 7 + c) % 40);
        try {
          if (i % 10 === 9) await f.sql(`INSERT INTO order_items VALUES ($1, $2, $3) ON CONFLICT (order_id, line_no) DO UPDATE SET qty = order_items.qty + 1`, [id, c, i]);
          else if (i % 10 === 8) await f.sql(`DELETE FROM order_items WHERE order_id = $1 AND line_no = $2`, [id, 1 - c]);
          else await f.sql(`UPDATE customers SET n = n + 1, name = $2 WHERE id = $1`, [id, `load ${c}:${i}`]);
          statements++;
        } catch {
          // the database is never restarted here; a failed statement is simply not counted
        }
      }
    };
    const clients = [client(0), client(1)];
    return {
      async stop() {
        running = false;
        await Promise.all(clients);
        return statements;
      },
    };
  }

  async function seed(f: PgRedisFixture): Promise<void> {
    await f.sql(`INSERT INTO customers (id, name) SELECT g, 'customer ' || g FROM generate_series(1, 40) g`);
    await f.sql(`INSERT INTO order_items SELECT g, 0, g FROM generate_series(1, 40) g`);
  }

  const converge = (f: PgRedisFixture, what: string) =>
    waitFor(async () => (await f.difference()) === '', { timeoutMs: 60_000, what, describe: () => f.difference() });

  it('converges after kill -9 mid-load and an immediate restart while the log holds every record', async () => {
    const f = (fixture = new PgRedisFixture(pg, redis, 'k9keep', { log: kafka.yaml() }));
    await f.setUp();
    await f.service.start();
    await seed(f);
    await converge(f, 'Redis to equal Postgres before the kill');
    for (let round = 0; round < 3; round++) {
      const load = startLoad(f);
      await new Promise((resolve) => setTimeout(resolve, 800 + round * 400));
      await f.service.kill9();
      await new Promise((resolve) => setTimeout(resolve, 300));
      const statements = await load.stop();
      await f.service.start(); // at once: no wait for the consumer group's session of the dead process
      console.log(`      round ${round + 1}: killed mid-load after ${statements} statements, restarted`);
    }
    const load = startLoad(f);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await load.stop();
    await converge(f, 'Redis to equal Postgres after three kill -9 and restarts');
    assert.ok(!f.service.output.some((l) => /Offset out of range/.test(l)), 'the log held every record: no offset went out of range');
  });

  it('stops the sink naming partition, offsets and `cdc reprocess` when the log dropped records it had not read, instead of skipping them', async () => {
    const f = (fixture = new PgRedisFixture(pg, redis, 'k9gone', { log: kafka.yaml() }));
    await f.setUp();
    await f.service.start();
    await seed(f);
    await converge(f, 'Redis to equal Postgres before the kill');
    const load = startLoad(f);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await f.service.kill9();
    await load.stop();

    // While the service is down: changes the sink must not lose...
    await f.sql(`UPDATE customers SET name = 'changed while down ' || id`);
    await f.sql(`DELETE FROM customers WHERE id % 5 = 0`);
    await f.sql(`INSERT INTO order_items SELECT g, 7, g FROM generate_series(1, 40) g ON CONFLICT DO NOTHING`);
    // ...then more than the topic keeps (5 MiB per partition on the mock): ~24 MiB of big order notes.
    await f.sql(`INSERT INTO orders SELECT g, 1, 'first' FROM generate_series(9001, 9040) g`);
    for (let round = 0; round < 30; round++) await f.sql(`UPDATE orders SET note = repeat(md5(random()::text), 625) WHERE id > 9000`);

    // The sink comes back only after the source has appended that backlog (as when the sink's process restarts
    // later than the source's, or a slow sink falls behind): its committed offsets are below what the topic keeps.
    await f.service.start({ args: ['--only', 'sources'] });
    const log = await kafka.open({ name: f.name, dataDir: f.dataDir });
    try {
      let last = '';
      await waitFor(
        async () => {
          const ends = JSON.stringify(await log.endOffsets());
          const settled = ends === last;
          last = ends;
          return settled && (await log.endOffsets()).reduce((a, b) => a + b, 0) > 1200;
        },
        { timeoutMs: 60_000, intervalMs: 2000, what: 'the source to append the backlog', describe: async () => `end offsets ${last}` },
      );
    } finally {
      await log.close();
    }
    await f.service.stop();
    await f.service.start({ waitUntilReady: false });
    const gone = () => f.service.output.find((l) => /is no longer held/.test(l));
    await waitFor(async () => gone() !== undefined, {
      timeoutMs: 60_000,
      what: 'the sink to stop because its committed offset is gone from the topic',
      describe: async () => `${await f.difference()}\n${f.service.recentOutput(15)}`,
    });
    const line = gone()!;
    console.log(`      ${line.slice(0, 400)}`);
    assert.match(line, /log consumer "sink-cache" stopped: its next offset \d+ on topic k9gone\.changes partition \d is no longer held: the oldest offset still held is \d+/);
    assert.match(line, /cdc reprocess --sink cache/);

    // The sink stays stopped (each restart of its runner meets the same gap) and the service says so.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const readyz = await fetch(`http://127.0.0.1:${f.service.httpPort}/readyz`);
    const body = await readyz.text();
    assert.equal(readyz.status, 503, `/readyz answers 503 while the sink is stopped: ${body}`);
    assert.match(body, /cache[^]*is no longer held/, `/readyz names the sink and why: ${body}`);
    console.log(`      Redis vs Postgres while stopped: ${await f.difference()}`);
  });
});
