import { strict as assert } from 'node:assert';
import { PgRedisFixture } from '../support/pg-redis-fixture';
import { PgServer, RedisServer, startPostgres, startRedis, stopAll } from '../support/servers';
import { waitFor } from '../support/wait';

/** Redis should hold each row as Postgres's own to_jsonb of it (int and text columns only, so the mappings agree). */
const ITEMS_EXPECTED = { items: `SELECT id::text AS k, to_jsonb(items)::text AS doc FROM items` };

describe('Postgres source: streaming through schema changes, TOAST, restarts and idle time', function () {
  this.timeout(120_000);
  let pg: PgServer;
  let redis: RedisServer;
  let fixture: PgRedisFixture;
  let n = 0;

  before(async () => ([pg, redis] = await Promise.all([startPostgres(), startRedis()])));
  after(async () => stopAll());
  afterEach(async () => fixture?.tearDown());

  const converge = (what: string, timeoutMs = 30_000) =>
    waitFor(async () => (await fixture.difference()) === '', {
      timeoutMs,
      intervalMs: 100,
      what,
      describe: async () => `${await fixture.difference()}\nservice output:\n${fixture.service.recentOutput(60)}`,
    });

  async function start(options: ConstructorParameters<typeof PgRedisFixture>[3]): Promise<void> {
    fixture = new PgRedisFixture(pg, redis, `stream${++n}`, options);
    await fixture.setUp();
    await fixture.service.start();
  }

  it('follows ADD, DROP, RENAME COLUMN and a type change between writes; TRUNCATE empties the table', async () => {
    await start({ schema: 'CREATE TABLE items (id int PRIMARY KEY, name text, qty int)', expectedRows: ITEMS_EXPECTED });
    await fixture.sql(`INSERT INTO items SELECT g, 'item ' || g, g FROM generate_series(1, 20) g`);
    await converge('the first rows');
    await fixture.sql('ALTER TABLE items ADD COLUMN colour text');
    await fixture.sql(`UPDATE items SET colour = 'red' WHERE id <= 10`);
    await fixture.sql(`UPDATE items SET colour = NULL WHERE id > 10`); // every row now carries the new shape
    await converge('rows after ADD COLUMN');
    await fixture.sql('ALTER TABLE items DROP COLUMN qty');
    await fixture.sql('ALTER TABLE items RENAME COLUMN name TO title');
    await fixture.sql(`UPDATE items SET title = title || '!'`);
    await converge('rows after DROP and RENAME COLUMN');
    await fixture.sql('ALTER TABLE items ALTER COLUMN colour TYPE varchar(20)');
    await fixture.sql(`INSERT INTO items VALUES (21, 'new', 'blue')`);
    await fixture.sql(`UPDATE items SET colour = 'green'`);
    await converge('rows after a type change');
    const doc = JSON.parse((await fixture.redis.get(`${fixture.prefix}public.items:21`))!);
    assert.deepEqual(doc, { id: 21, title: 'new', colour: 'green' });

    await fixture.sql('TRUNCATE items');
    await converge('an empty table after TRUNCATE');
    await fixture.sql(`INSERT INTO items VALUES (1, 'after truncate', 'black')`);
    await converge('a row written after TRUNCATE');
  });

  it('keeps an unchanged 100 kB TOASTed column when another column is updated', async () => {
    await start({
      schema: 'CREATE TABLE docs (id int PRIMARY KEY, body text, version int)',
      expectedRows: { docs: `SELECT id::text AS k, to_jsonb(docs)::text AS doc FROM docs` },
    });
    // Random text does not compress, so Postgres stores it out of line (TOAST).
    await fixture.sql(`INSERT INTO docs SELECT 1, string_agg(md5(g::text), '') , 1 FROM generate_series(1, 3200) g`);
    await converge('the document');
    await fixture.sql('UPDATE docs SET version = 2 WHERE id = 1');
    await converge('the document after an update that left the body unchanged');
    const doc = JSON.parse((await fixture.redis.get(`${fixture.prefix}public.docs:1`))!);
    assert.equal(doc.version, 2);
    assert.equal(doc.body.length, 3200 * 32);
  });

  it('reconnects after a Postgres restart mid-stream and loses nothing', async () => {
    await start({ schema: 'CREATE TABLE items (id int PRIMARY KEY, name text, qty int)', expectedRows: ITEMS_EXPECTED });
    let running = true;
    const writer = (async () => {
      for (let i = 1; running || i < 200; i++) {
        try {
          await fixture.sql(`INSERT INTO items VALUES ($1, 'item', 1) ON CONFLICT (id) DO UPDATE SET qty = items.qty + 1`, [1 + (i % 60)]);
        } catch {
          await new Promise((r) => setTimeout(r, 100)); // the server is restarting
        }
      }
    })();
    await new Promise((r) => setTimeout(r, 500));
    await pg.restart();
    await new Promise((r) => setTimeout(r, 500));
    running = false;
    await writer;
    await converge('Redis to equal Postgres after the restart', 60_000);
    assert.ok(fixture.service.output.some((l) => /retrying/.test(l)), 'the service reported the lost connection');
  });

  it('captures a partitioned table through its root: rows of every partition land under the root name', async () => {
    await start({
      schema: `CREATE TABLE events (id int, region text, note text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
               CREATE TABLE events_eu PARTITION OF events FOR VALUES IN ('eu');
               CREATE TABLE events_us PARTITION OF events FOR VALUES IN ('us');
               INSERT INTO events VALUES (1, 'eu', 'snapshot'), (2, 'us', 'snapshot');`,
      expectedRows: { events: `SELECT id || ':' || region AS k, to_jsonb(events)::text AS doc FROM events` },
    });
    await fixture.sql(`INSERT INTO events VALUES (3, 'eu', 'streamed'), (4, 'us', 'streamed')`);
    await fixture.sql(`UPDATE events SET note = 'updated' WHERE id IN (1, 4)`);
    await converge('rows of both partitions under public.events');
    assert.equal((await fixture.redis.keys(`${fixture.prefix}public.events_*`)).length, 0, 'no keys under partition names');
  });

  it('advances the slot on an idle database through heartbeats while unrelated tables are written', async () => {
    await start({
      schema: 'CREATE TABLE items (id int PRIMARY KEY, name text, qty int); CREATE TABLE unrelated (id serial PRIMARY KEY, junk text)',
      expectedRows: ITEMS_EXPECTED,
      sourceOptions: 'heartbeatIntervalMs: 200',
    });
    const slot = `tidewater_${fixture.name}_pg`;
    const confirmed = async () => (await fixture.sql(`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1`, [slot]))[0].lsn as string;
    for (let i = 0; i < 5; i++) await fixture.sql(`INSERT INTO unrelated (junk) SELECT repeat('x', 1000) FROM generate_series(1, 100)`);
    const [{ lsn: written }] = await fixture.sql('SELECT pg_current_wal_lsn()::text AS lsn');
    await waitFor(async () => (await fixture.sql(`SELECT $1::pg_lsn >= $2::pg_lsn AS ok`, [await confirmed(), written]))[0].ok === true, {
      timeoutMs: 10_000,
      what: `confirmed_flush_lsn to pass ${written}, the WAL written by unrelated tables`,
      describe: async () => `confirmed_flush_lsn is ${await confirmed()}`,
    });
    const metrics = await fixture.service.metrics();
    const lag = Number(/^cdc_source_lag_seconds\{source="[^"]+"\} (\S+)$/m.exec(metrics)?.[1]);
    assert.ok(lag < 5, `cdc_source_lag_seconds on an idle database: ${lag}`);
    assert.match(metrics, /^cdc_source_backlog_bytes\{source="[^"]+"\} \d+/m);
  });
});

describe('Postgres source: clear errors', function () {
  this.timeout(60_000);
  let pg: PgServer;
  let redis: RedisServer;
  let fixture: PgRedisFixture;
  let n = 0;

  before(async () => ([pg, redis] = await Promise.all([startPostgres(), startRedis()])));
  after(async () => stopAll());
  afterEach(async () => fixture?.tearDown());

  async function failureOf(options: ConstructorParameters<typeof PgRedisFixture>[3], prepare?: (f: PgRedisFixture) => Promise<void>): Promise<string> {
    fixture = new PgRedisFixture(pg, redis, `err${++n}`, options);
    await fixture.setUp();
    await prepare?.(fixture);
    await fixture.service.start({ waitUntilReady: false });
    await waitFor(() => fixture.service.output.some((l) => l.includes('ERROR')), { timeoutMs: 20_000, what: 'an error' });
    return fixture.service.output.find((l) => l.includes('ERROR'))!;
  }

  it('names a table without a primary key and the fix', async () => {
    const line = await failureOf({ schema: 'CREATE TABLE nokey (a int, b text)', expectedRows: { nokey: 'SELECT 1 AS k, 1 AS doc' } });
    assert.match(line, /table public\.nokey has no primary key or replica identity.*ALTER TABLE "public"\."nokey" REPLICA IDENTITY FULL/);
  });

  it('names a role without REPLICATION and the grant it needs', async () => {
    const line = await failureOf({ schema: 'CREATE TABLE items (id int PRIMARY KEY)', expectedRows: { items: 'SELECT 1 AS k, 1 AS doc' } }, async (f) => {
      await f.sql(`CREATE ROLE plain LOGIN; GRANT SELECT ON items TO plain`);
      f.service.env.PG_URL = f.pgUrl.replace('postgres@', 'plain@');
    });
    assert.match(line, /role plain may not replicate: as a superuser run ALTER ROLE "plain" REPLICATION/);
  });

  it('names a missing SELECT grant and the statement that fixes it', async () => {
    const line = await failureOf({ schema: 'CREATE TABLE items (id int PRIMARY KEY)', expectedRows: { items: 'SELECT 1 AS k, 1 AS doc' } }, async (f) => {
      await f.sql(`CREATE ROLE replicator LOGIN REPLICATION`);
      f.service.env.PG_URL = f.pgUrl.replace('postgres@', 'replicator@');
    });
    assert.match(line, /role replicator cannot read public\.items: run GRANT SELECT ON "public"\."items" TO "replicator"/);
  });

  it('re-snapshots under snapshot mode when_needed when the slot is gone', async () => {
    fixture = new PgRedisFixture(pg, redis, `err${++n}`, {
      schema: 'CREATE TABLE items (id int PRIMARY KEY, name text)',
      expectedRows: { items: 'SELECT id::text AS k, to_jsonb(items)::text AS doc FROM items' },
      sourceOptions: 'snapshot: { mode: when_needed }',
    });
    await fixture.setUp();
    await fixture.service.start();
    await waitFor(() => fixture.service.output.some((l) => l.includes('streaming slot=')), { timeoutMs: 20_000, what: 'streaming' });
    await fixture.service.stop();
    await fixture.sql(`SELECT pg_drop_replication_slot('tidewater_${fixture.name}_pg')`);
    await fixture.sql(`INSERT INTO items VALUES (1, 'written while the slot was gone')`);
    await fixture.service.start();
    await waitFor(async () => (await fixture.difference()) === '', { timeoutMs: 20_000, what: 'the re-snapshot', describe: () => fixture.difference() });
    assert.ok(fixture.service.output.some((l) => /reason="slot tidewater_err\d+_pg is missing \(snapshot mode when_needed\)"/.test(l)));
  });

  it('says when the slot is gone and how to re-snapshot', async () => {
    fixture = new PgRedisFixture(pg, redis, `err${++n}`, { schema: 'CREATE TABLE items (id int PRIMARY KEY)', expectedRows: { items: 'SELECT id::text AS k, to_jsonb(items)::text AS doc FROM items' } });
    await fixture.setUp();
    await fixture.service.start();
    await waitFor(() => fixture.service.output.some((l) => l.includes('streaming slot=')), { timeoutMs: 20_000, what: 'streaming' });
    await fixture.service.stop();
    await fixture.sql(`SELECT pg_drop_replication_slot('tidewater_${fixture.name}_pg')`);
    await fixture.service.start({ waitUntilReady: false });
    await waitFor(() => fixture.service.output.some((l) => l.includes('is missing')), {
      timeoutMs: 20_000,
      what: 'the missing-slot error',
      describe: () => fixture.service.recentOutput(10),
    });
    assert.ok(fixture.service.output.some((l) => /replication slot tidewater_err\d+_pg is missing.*set snapshot\.mode: when_needed/.test(l)));
  });
});
