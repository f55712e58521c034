// Postgres → Redis, Elasticsearch and the warehouse, read back as readers do:
// composite keys that joined with ':' collided (issue 13.3), a primary-key
// change with an unchanged TOAST column (13.4), and a re-snapshot after the
// slot was lost, with rows deleted meanwhile (12.1).
import { strict as assert } from 'node:assert';
import { Client } from 'pg';
import { keyString } from '../../core/event/change-event';
import { startEsServer, EsServer } from '../support/es-server';
import { PgServer, RedisServer, startPostgres, startRedis, stopAll } from '../support/servers';
import { runCli } from '../support/service-process';
import { rowDifference, Rows, SinkE2e } from '../support/sink-e2e';
import { waitFor } from '../support/wait';

describe('sinks exact on keys, TOAST and re-snapshots (Postgres source)', function () {
  this.timeout(180_000);
  let pg: PgServer;
  let redis: RedisServer;
  let es: EsServer;
  let e2e: SinkE2e;
  let dbUrl = '';

  async function sql(text: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
    const client = new Client({ connectionString: dbUrl });
    await client.connect();
    try {
      return (await client.query(text, params)).rows;
    } finally {
      await client.end();
    }
  }

  before(async () => {
    [pg, redis, es] = await Promise.all([startPostgres(), startRedis(), startEsServer()]);
    const admin = new Client({ connectionString: pg.url });
    await admin.connect();
    await admin.query('CREATE DATABASE sinkexact');
    await admin.end();
    dbUrl = pg.url.replace(/\/[^/]*$/, '/sinkexact');
    await sql(`CREATE TABLE pairs (a text, b text, v int NOT NULL, PRIMARY KEY (a, b));
      CREATE TABLE docs (id int PRIMARY KEY, title text NOT NULL, body text);
      ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;
      CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL);
      INSERT INTO items SELECT g, g FROM generate_series(1, 300) g`);
    e2e = new SinkE2e({
      name: 'exact', redisUrl: redis.url, es, warehouseUrl: dbUrl, env: { PG_URL: dbUrl },
      source: 'type: postgres, url: "${PG_URL}", tables: [public.pairs, public.docs, public.items], snapshot: { mode: when_needed }',
    });
    await e2e.setUp();
    await e2e.service.start();
  });
  after(async () => {
    await e2e?.tearDown();
    await es?.stop();
    await stopAll();
  });

  /** Every sink's rows of a table against the source's, keyed by keyString() of the key columns. */
  async function differences(table: string, keyColumns: string[], query: string): Promise<string> {
    const keyOf = (row: Record<string, unknown>) => keyString(Object.fromEntries(keyColumns.map((c) => [c, row[c]])));
    const expected: Rows = new Map((await sql(query)).map((row) => [keyOf(row), row]));
    return [
      rowDifference('redis', expected, await e2e.redisRows(table)),
      rowDifference('elasticsearch', expected, e2e.esRows(table)),
      rowDifference('warehouse', expected, await e2e.warehouseRows(table, keyOf)),
    ].filter(Boolean).join(' | ');
  }

  it('keeps composite keys that joined by ":" would collide apart in Redis, Elasticsearch and the warehouse', async () => {
    await sql(`INSERT INTO pairs VALUES ('a:b', 'c', 1), ('a', 'b:c', 2), ('a\\', ':c', 3), ('a\\:', 'c', 4), ('x', 'y', 5)`);
    await sql(`UPDATE pairs SET v = v * 10 WHERE a = 'a'`); // one batch holding changes of colliding rows
    const check = () => differences('public.pairs', ['a', 'b'], 'SELECT a, b, v FROM pairs');
    await waitFor(async () => (await check()) === '', { timeoutMs: 60_000, what: 'the pairs in every sink', describe: check });
    const rows = (await sql('SELECT count(*)::int AS n FROM pairs'))[0].n;
    assert.equal(rows, 5);
    assert.equal((await e2e.redisRows('public.pairs')).size, rows, 'one Redis key per row');
    assert.equal(e2e.esRows('public.pairs').size, rows, 'one Elasticsearch document per row');
    assert.equal((await e2e.warehouseRows('public.pairs', (r) => `${r.a}\u0000${r.b}`)).size, rows, 'one warehouse row per row');
    assert.ok((await e2e.redisRows('public.pairs')).has('x:y'), 'keys without ":" or "\\" look as before');
    const verify = runCli(['verify', '-c', e2e.service.configPath, '--sink', 'cache', '--table', 'public.pairs'], e2e.service.env);
    assert.equal(verify.code, 0, `${verify.stdout}\n${verify.stderr}`);
    assert.match(verify.stdout, /table public\.pairs: 5 source rows compared, no differences/);
    // A row lost behind the pipeline's back: verify names its key, --repair resyncs exactly that row.
    await e2e.redis!.del(`${e2e.prefix}public.pairs:${keyString({ a: 'a:b', b: 'c' })}`);
    const repair = runCli(['verify', '-c', e2e.service.configPath, '--sink', 'cache', '--table', 'public.pairs', '--repair'], e2e.service.env);
    assert.equal(repair.code, 2, `${repair.stdout}\n${repair.stderr}`);
    assert.match(repair.stdout, /missing public\.pairs:a\\:b:c\n/);
    await waitFor(async () => (await check()) === '', { timeoutMs: 60_000, what: 'the repaired pair in every sink', describe: check });
  });

  it('dead-letters a primary-key change whose TOAST column Postgres did not send, naming the fix, in every sink', async () => {
    const body = (await sql(`SELECT string_agg(md5(g::text), '') AS body FROM generate_series(1, 400) g`))[0].body as string; // 12.8 kB, stored out of line
    await sql(`INSERT INTO docs VALUES (1, 'first', $1), (3, 'third', $1)`, [body]);
    await sql(`UPDATE docs SET id = 2 WHERE id = 1`);
    await waitFor(async () => (await e2e.deadLetters('cache')).length > 0 && (await e2e.deadLetters('search')).length > 0 && (await e2e.deadLetters('warehouse')).length > 0,
      { timeoutMs: 60_000, what: 'a dead letter in every sink', describe: () => e2e.service.recentOutput(10) });
    for (const sink of ['cache', 'search', 'warehouse']) {
      const letters = await e2e.deadLetters(sink);
      assert.equal(letters.length, 1, `${sink}: ${JSON.stringify(letters.map((l) => l.reason))}`);
      assert.equal(letters[0].table, 'public.docs');
      assert.equal(letters[0].key, '2');
      assert.match(letters[0].reason, /primary key changed while TOAST column\(s\) body stayed unchanged.*ALTER TABLE public\.docs REPLICA IDENTITY FULL/);
    }
    // The counter moves once the letter is fsynced; the file shows the line a moment before.
    const counted = (metrics: string, sink: string) => new RegExp(`cdc_sink_dead_letters_total\\{[^}]*sink="${sink}"[^}]*\\} 1\\n`).test(metrics);
    await waitFor(async () => { const m = await e2e.service.metrics(); return ['cache', 'search', 'warehouse'].every((sink) => counted(m, sink)); },
      { timeoutMs: 10_000, what: 'every sink counted once in cdc_sink_dead_letters_total', describe: async () => (await e2e.service.metrics()).split('\n').filter((l) => l.startsWith('cdc_sink_dead_letters_total')).join('\n') });
    // Never a row without its body: row 2 is absent everywhere (row 1 is gone), row 3 is whole.
    const check = () => differences('public.docs', ['id'], 'SELECT id, title, body FROM docs WHERE id <> 2');
    await waitFor(async () => (await check()) === '', { timeoutMs: 30_000, what: 'docs without the refused row', describe: check });
    // A later update of that row, body unchanged again: no sink holds a row to keep the body from, so it is refused too.
    await sql(`UPDATE docs SET title = 'retitled' WHERE id = 2`);
    await waitFor(async () => (await Promise.all(['cache', 'search', 'warehouse'].map((s) => e2e.deadLetters(s)))).every((l) => l.length === 2),
      { timeoutMs: 60_000, what: 'a second dead letter in every sink', describe: async () => JSON.stringify(await Promise.all(['cache', 'search', 'warehouse'].map(async (s) => (await e2e.deadLetters(s)).length))) });
    for (const sink of ['cache', 'search', 'warehouse']) {
      assert.match((await e2e.deadLetters(sink))[1].reason, /key 2, .*the sink holds no row to keep them from.*cdc resync --table public\.docs/, sink);
    }
    assert.equal(await check(), '', 'row 2 still absent everywhere, never without its body');
  });

  it('with REPLICA IDENTITY FULL, a primary-key change keeps its TOAST column in every sink', async () => {
    await sql(`ALTER TABLE docs REPLICA IDENTITY FULL; UPDATE docs SET id = 4 WHERE id = 3`);
    const check = () => differences('public.docs', ['id'], 'SELECT id, title, body FROM docs WHERE id <> 2');
    await waitFor(async () => (await check()) === '', { timeoutMs: 60_000, what: 'row 4 whole in every sink', describe: check });
    assert.equal((await e2e.deadLetters('cache')).length, 2, 'no new dead letter');
  });

  it('a re-snapshot after the slot was dropped removes rows deleted meanwhile from every sink', async () => {
    const check = () => differences('public.items', ['id'], 'SELECT id, v FROM items');
    await waitFor(async () => (await check()) === '', { timeoutMs: 60_000, what: 'items in every sink', describe: check });
    assert.equal(await e2e.service.stop(), 0);
    await sql(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = 'sinkexact'`);
    await sql(`DELETE FROM items WHERE id % 3 = 0; UPDATE items SET v = -v WHERE id % 3 = 1; INSERT INTO items VALUES (1000, 1000)`);
    await e2e.service.start();
    await waitFor(async () => (await check()) === '', { timeoutMs: 90_000, what: 'the re-snapshot in every sink', describe: check });
    assert.equal((await e2e.redisRows('public.items')).size, 201);
  });
});
