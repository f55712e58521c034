import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KafkaE2eLog } from '../support/e2e-log';
import { PgRedisFixture } from '../support/pg-redis-fixture';
import { freePort, PgServer, RedisServer, startPostgres, startRedis, stopAll } from '../support/servers';
import { ServiceProcess } from '../support/service-process';
import { waitFor } from '../support/wait';

/** `cdc run --only sources` and `--only sinks` as separate processes, as on separate machines. */
describe('sources and sinks in separate processes', function () {
  this.timeout(120_000);
  let pg: PgServer;
  let redis: RedisServer;
  const kafka = new KafkaE2eLog();
  let fixture: PgRedisFixture | undefined;
  let processes: ServiceProcess[] = [];

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis(), kafka.setUp(['split1'])]);
  });
  after(async () => {
    await kafka.tearDown();
    await stopAll();
  });
  afterEach(async () => {
    await Promise.allSettled(processes.map((p) => p.stop()));
    processes = [];
    await fixture?.tearDown();
  });

  /** A process of the fixture's service, on its own HTTP port (its own copy of the config). */
  async function process(f: PgRedisFixture, args: string[]): Promise<ServiceProcess> {
    const port = await freePort();
    const config = join(f.dataDir, `cdc-${port}.yaml`);
    writeFileSync(config, readFileSync(f.service.configPath, 'utf8').replace(/port: \d+/, `port: ${port}`));
    const p = new ServiceProcess(config, port, f.service.env);
    processes.push(p);
    await p.start({ args });
    return p;
  }

  /** The partitions a sink process owns now, from its last "assigned" log line. */
  const owned = (p: ServiceProcess) => {
    const lines = p.output.filter((l) => /consumer group \S+: assigned /.test(l));
    const last = lines[lines.length - 1] ?? '';
    return last.includes('assigned nothing') ? [] : [...last.matchAll(/\.changes:(\d+)/g)].map((m) => Number(m[1])).sort();
  };

  it('two sink processes in one consumer group split the partitions, and the survivor takes over after a kill -9', async () => {
    const f = (fixture = new PgRedisFixture(pg, redis, 'split1', { log: kafka.yaml() }));
    await f.setUp();
    const converge = (what: string) => waitFor(async () => (await f.difference()) === '', { timeoutMs: 40_000, what, describe: () => f.difference() });
    await process(f, ['--only', 'sources']);
    const first = await process(f, ['--only', 'sinks']);
    const second = await process(f, ['--only', 'sinks', '--sink', 'cache']);
    // Log lines of two processes may show different generations for a moment: wait for one consistent split.
    const split = () => {
      const [a, b] = [owned(first), owned(second)];
      return a.length > 0 && b.length > 0 && JSON.stringify([...a, ...b].sort()) === '[0,1,2,3]';
    };
    await waitFor(split, {
      timeoutMs: 30_000,
      what: 'the two sink processes to share the 4 partitions, each owning some',
      describe: () => `first owns ${owned(first)}, second owns ${owned(second)}`,
    });

    for (let id = 1; id <= 40; id++) await f.sql(`INSERT INTO customers (id, name) VALUES ($1, $2)`, [id, `customer ${id}`]);
    await f.sql(`INSERT INTO order_items SELECT g, 1, g FROM generate_series(1, 20) g`);
    await converge('Redis to equal Postgres with two sink processes');

    await first.kill9();
    for (let id = 1; id <= 40; id++) await f.sql(`UPDATE customers SET n = n + 1, name = $2 WHERE id = $1`, [id, `after kill ${id}`]);
    await f.sql(`DELETE FROM customers WHERE id % 4 = 0`);
    await f.sql(`TRUNCATE order_items`);
    await converge('Redis to equal Postgres once the surviving sink process took over');
    assert.deepEqual(owned(second), [0, 1, 2, 3], 'the survivor owns every partition');
  });

  it('refuses a second process on the embedded log, pointing at the Kafka log', async () => {
    const f = (fixture = new PgRedisFixture(pg, redis, 'split2'));
    await f.setUp();
    await f.service.start();
    await assert.rejects(process(f, ['--only', 'sinks']), (error: Error) => {
      assert.match(error.message, /is in use by process \d+/);
      assert.match(error.message, /separate processes \(--only, --sink\) needs a log they can share.*configure log: \{ type: kafka/);
      return true;
    });
  });
});
