import { strict as assert } from 'node:assert';
import { Client } from 'pg';
import { catalogChangesSince, nextTransactionId } from '../../connectors/postgres/slot-creation-race';
import { PgRedisFixture } from '../support/pg-redis-fixture';
import { PgServer, RedisServer, startPostgres, startRedis, stopAll } from '../support/servers';
import { waitFor } from '../support/wait';

// A replication slot created while a DDL transaction commits can be unable to decode the
// new table's changes forever ("could not map filenode"). The source notices the catalog
// change and creates the slot again.
describe('a Postgres slot created while the catalog changes', function () {
  this.timeout(120_000);
  let pg: PgServer;
  let redis: RedisServer;
  let fixture: PgRedisFixture;

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    fixture = new PgRedisFixture(pg, redis, 'slotrace');
    await fixture.setUp();
  });
  after(async () => {
    await fixture?.tearDown();
    await stopAll();
  });

  async function connect(): Promise<Client> {
    const client = new Client({ connectionString: pg.url.replace(/\/[^/]*$/, '/slotrace') });
    await client.connect();
    return client;
  }

  it('names the relations, columns and types committed since a transaction id, and nothing when none were', async () => {
    const admin = await connect();
    const other = await connect();
    try {
      const since = await nextTransactionId(admin);
      await other.query('INSERT INTO customers (id, name) VALUES (-1, \'not a catalog change\'); DELETE FROM customers WHERE id = -1');
      assert.deepEqual(await catalogChangesSince(admin, since), []);
      await other.query('CREATE TABLE raced (id int PRIMARY KEY)');
      const changed = await catalogChangesSince(admin, since);
      assert.ok(changed.includes('relation raced') && changed.includes('columns of raced'), JSON.stringify(changed));
    } finally {
      await admin.end();
      await other.end();
    }
  });

  it('creates the slot again when a table was created while it was being made, and streams', async () => {
    // A transaction holding an id makes the slot's creation wait for it; a table created meanwhile commits inside the creation.
    const holder = await connect();
    const ddl = await connect();
    try {
      await holder.query('BEGIN; SELECT pg_current_xact_id()');
      await fixture.service.start({ waitUntilReady: false });
      await waitFor(async () => (await ddl.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'CREATE_REPLICATION_SLOT%'`)).rows[0].n > 0,
        { timeoutMs: 30_000, what: 'the source to be creating its slot', describe: () => fixture.service.recentOutput(10) });
      await ddl.query('CREATE TABLE made_during_creation (id int PRIMARY KEY)');
      await holder.query('COMMIT');
      await waitFor(() => fixture.service.isReady(), { timeoutMs: 60_000, what: 'the service to stream', describe: () => fixture.service.recentOutput(10) });
      const again = fixture.service.output.find((l) => /the catalog changed while the replication slot was created.*creating it again/.test(l));
      assert.ok(again, fixture.service.recentOutput(20));
      assert.match(again, /relation made_during_creation/);
      await fixture.sql(`INSERT INTO customers (id, name) SELECT g, 'customer ' || g FROM generate_series(1, 50) g`);
      await waitFor(async () => (await fixture.difference()) === '', { timeoutMs: 60_000, what: 'Redis to equal Postgres', describe: () => fixture.difference() });
    } finally {
      await holder.end();
      await ddl.end();
    }
  });
});
