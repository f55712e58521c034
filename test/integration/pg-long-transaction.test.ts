import { strict as assert } from 'node:assert';
import { Client } from 'pg';
import { PgRedisFixture } from '../support/pg-redis-fixture';
import { PgServer, RedisServer, startPostgres, startRedis, stopAll } from '../support/servers';
import { waitFor } from '../support/wait';

const ITEMS_EXPECTED = { items: `SELECT id::text AS k, to_jsonb(items)::text AS doc FROM items` };

// The full fault suite's 2M-row transaction: while the source worked through it, its replication
// socket was paused (backpressure) and no transaction ended, so nothing told the walsender we were
// alive; after wal_sender_timeout (60 s by default) Postgres cut the connection and the source
// started the transaction over: 1.4M changes appended twice. A transaction that takes longer than
// the timeout every time would never get through.
describe('Postgres source: a transaction that takes longer than wal_sender_timeout to pass to the log', function () {
  this.timeout(180_000);
  let pg: PgServer;
  let redis: RedisServer;
  let fixture: PgRedisFixture;

  const setTimeoutOnServer = async (value: string) => {
    const admin = new Client({ connectionString: pg.url });
    await admin.connect();
    try {
      await admin.query(`ALTER SYSTEM SET wal_sender_timeout = '${value}'`);
      await admin.query('SELECT pg_reload_conf()');
    } finally {
      await admin.end();
    }
  };

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    await setTimeoutOnServer('1s');
  });
  after(async () => stopAll());
  afterEach(async () => fixture?.tearDown());

  it('keeps its replication connection (status updates while it is paused) and never starts the transaction over', async () => {
    fixture = new PgRedisFixture(pg, redis, 'longtx', { schema: 'CREATE TABLE items (id int PRIMARY KEY, name text, qty int)', expectedRows: ITEMS_EXPECTED });
    await fixture.setUp();
    await fixture.service.start();
    await fixture.sql(`INSERT INTO items VALUES (0, 'first', 0)`);
    await waitFor(async () => (await fixture.difference()) === '', { timeoutMs: 30_000, intervalMs: 100, what: 'the first row' });
    const started = Date.now();
    await fixture.sql(`INSERT INTO items SELECT g, 'item ' || g, g FROM generate_series(1, 200000) g`);
    await waitFor(async () => (await fixture.difference()) === '', {
      timeoutMs: 150_000,
      intervalMs: 500,
      what: 'Redis to equal Postgres after the big transaction',
      describe: async () => `${(await fixture.difference()).slice(0, 500)}\nservice output:\n${fixture.service.recentOutput(30)}`,
    });
    const seconds = (Date.now() - started) / 1000;
    const lost = fixture.service.output.filter((l) => /replication connection .* lost|retrying from the last durable position/.test(l));
    assert.deepEqual(lost, [], `the replication connection was never lost (the transaction took ${seconds.toFixed(1)} s against a 1 s wal_sender_timeout)`);
    assert.ok(seconds > 3, `the transaction took longer than three times the timeout to pass through (${seconds.toFixed(1)} s), or this test proves nothing`);
    console.log(`      (200,000 rows in one transaction through the source in ${seconds.toFixed(1)} s, wal_sender_timeout 1 s, no reconnect)`);
  });
});
