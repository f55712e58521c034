import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { parseVersion, versionEpoch } from '../../core/event/version';
import { parseCheckpoint } from '../../connectors/postgres/checkpoint';
import { formatLsn, parseLsn } from '../../connectors/postgres/lsn';
import { PgRedisFixture, readWholeLog, SHOP_SCHEMA } from '../support/pg-redis-fixture';
import { baseBackup, RestoredPg } from '../support/pg-restored-backup';
import { resetWalAbove } from '../support/pg-reset-wal';
import { PgServer, RedisServer, startPostgres, startRedis, stopAll } from '../support/servers';
import { waitFor } from '../support/wait';
import { readyz } from './connection-faults-helpers';

// Issue 12.2 for Postgres: when the source's positions go backwards (another cluster
// with a lower LSN, a restore from backup onto a timeline forked before the saved
// position), versions keep their order through a source epoch, the re-snapshot
// removes what the new server lacks, and the sinks end equal to the new server.
describe('source history: Postgres positions going backwards (source epoch)', function () {
  this.timeout(240_000);
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis();
  });
  after(() => stopAll());

  async function sql(url: string, text: string): Promise<void> {
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(text);
    } finally {
      await client.end();
    }
  }

  async function walEnd(url: string): Promise<string> {
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0].lsn;
    } finally {
      await client.end();
    }
  }

  const converge = (fixture: PgRedisFixture, what: string) =>
    waitFor(async () => (await fixture.difference()) === '', { timeoutMs: 90_000, what, describe: () => fixture.difference() });

  /** The source's durable checkpoint (its state file; the service is stopped). */
  function savedCheckpoint(fixture: PgRedisFixture): string {
    return (JSON.parse(readFileSync(join(fixture.dataDir, 'var', 'sources', `${fixture.name}-pg.json`), 'utf8')) as { position: string }).position;
  }

  function useWhenNeeded(fixture: PgRedisFixture): void {
    const config = readFileSync(fixture.service.configPath, 'utf8');
    writeFileSync(fixture.service.configPath, config.replace(/(tables: \[[^\]]*\])/, '$1, snapshot: { mode: when_needed }'));
  }

  /** Points the service and the fixture's expectations at another server's database. */
  function switchTo(fixture: PgRedisFixture, serverUrl: string): string {
    const url = serverUrl.replace(/\/[^/]*$/, `/${fixture.name}`);
    fixture.service.env.PG_URL = url;
    fixture.pgUrl = url;
    return url;
  }

  it('another cluster with a lower LSN: refused by default naming server, LSN and what to do; with when_needed re-snapshotted under epoch 1, sinks equal to the new server row by row', async () => {
    const a = await startPostgres();
    await resetWalAbove(a); // the first cluster has lived long: its LSNs are far above a new one's
    const b: PgServer = await startPostgres();
    const fixture = new PgRedisFixture(a, redis, 'epochpg');
    await fixture.setUp();
    try {
      await fixture.sql(`INSERT INTO customers (id, name) SELECT g, 'on a ' || g FROM generate_series(1, 300) g`);
      await fixture.sql(`INSERT INTO orders SELECT g, g, 'order on a' FROM generate_series(1, 80) g`);
      await fixture.sql(`INSERT INTO order_items SELECT g, 1, g FROM generate_series(1, 80) g`);
      await fixture.service.start();
      await converge(fixture, 'Redis to equal the first cluster');
      await fixture.sql(`UPDATE customers SET n = n + 1 WHERE id <= 100`);
      await converge(fixture, 'streamed changes of the first cluster');
      await new Promise((resolve) => setTimeout(resolve, 2500)); // the slot hears of the durable position (at most once a second)
      assert.equal(await fixture.service.stop(), 0);

      // The same server again: the slot is never ahead of the saved position, so a plain restart streams on.
      const slotLsn = async () => parseLsn(String((await fixture.sql(`SELECT confirmed_flush_lsn::text AS l FROM pg_replication_slots WHERE slot_name = 'tidewater_epochpg_pg'`))[0].l));
      assert.ok((await slotLsn()) <= parseCheckpoint(savedCheckpoint(fixture)).position, 'the slot is at or behind the saved position');
      await fixture.service.start();
      await fixture.sql(`UPDATE customers SET n = n + 1 WHERE id <= 10`);
      await converge(fixture, 'a plain restart to stream on');
      assert.ok(!fixture.service.output.some((l) => /history changed|after the saved position/.test(l)), fixture.service.recentOutput(10));
      assert.equal(await fixture.service.stop(), 0);

      // A slot recreated behind the service's back starts after the saved position: the changes between are lost to it; said so.
      await fixture.sql(`SELECT pg_drop_replication_slot('tidewater_epochpg_pg')`);
      await fixture.sql(`UPDATE customers SET name = 'missed by the new slot' WHERE id = 2`);
      await fixture.sql(`SELECT pg_create_logical_replication_slot('tidewater_epochpg_pg', 'pgoutput')`);
      await fixture.service.start({ waitUntilReady: false });
      const gap = /replication slot tidewater_epochpg_pg starts at [0-9A-F]+\/[0-9A-F]+, after the saved position .*set snapshot\.mode: when_needed/;
      await waitFor(async () => fixture.service.output.some((l) => gap.test(l)), { timeoutMs: 20_000, what: 'the gap of a recreated slot to be reported', describe: () => fixture.service.recentOutput() });
      assert.equal(await fixture.service.stop(), 0);
      const savedLsn = parseCheckpoint(savedCheckpoint(fixture)).position;

      // The second cluster: the same tables, other rows (some keys shared, some not), a far lower LSN, and a
      // leftover slot of the source's name (a slot recreated on another server).
      await sql(b.url, `CREATE DATABASE ${fixture.name}`);
      const bUrl = switchTo(fixture, b.url);
      await sql(bUrl, SHOP_SCHEMA);
      await sql(bUrl, `INSERT INTO customers (id, name, n) SELECT g, 'on b ' || g, 5 FROM generate_series(200, 450) g;
                       INSERT INTO orders SELECT g, g, 'order on b' FROM generate_series(50, 60) g;
                       INSERT INTO order_items SELECT g, 2, g FROM generate_series(1, 10) g`);
      await sql(bUrl, `SELECT pg_create_logical_replication_slot('tidewater_epochpg_pg', 'pgoutput')`);
      const bLsn = await walEnd(bUrl);

      // Default snapshot mode: the source stops and says why and what to do.
      await fixture.service.start({ waitUntilReady: false });
      const refusal = /cannot resume at the saved position/;
      await waitFor(async () => fixture.service.output.some((l) => refusal.test(l)), { timeoutMs: 20_000, what: 'the refusal to stream from another cluster', describe: () => fixture.service.recentOutput() });
      const line = fixture.service.output.find((l) => refusal.test(l))!;
      const bServer = `127.0.0.1:${b.port}`;
      assert.ok(line.includes(`saved position ${formatLsn(savedLsn)} on ${bServer}`), line);
      assert.match(line, /is another cluster \(system identifier \d+\)/);
      assert.match(line, /set snapshot\.mode: when_needed on this source to re-snapshot under a new source epoch/i);
      const ready = await readyz(fixture.service);
      assert.equal(ready.status, 503, ready.body);
      assert.match(ready.body, /another cluster/);
      assert.equal(await fixture.service.stop(), 0);

      // when_needed: a new epoch, a re-snapshot with truncates first; Redis ends equal to the second cluster.
      useWhenNeeded(fixture);
      await fixture.service.start({ waitUntilReady: false });
      await converge(fixture, 'Redis to equal the second cluster after the re-snapshot');
      assert.ok(fixture.service.output.some((l) => /history changed: re-snapshotting under a new source epoch.*epoch=1/.test(l)), fixture.service.recentOutput(20));
      // Later changes on the second cluster carry epoch-1 versions, which beat the first cluster's higher LSNs.
      await fixture.sql(`UPDATE customers SET name = 'changed on b', n = n + 1 WHERE id BETWEEN 200 AND 260;
                         DELETE FROM customers WHERE id BETWEEN 261 AND 280;
                         INSERT INTO orders VALUES (1, 1, 'key 1 again, on b'); DELETE FROM order_items WHERE order_id = 3`);
      await converge(fixture, 'changes on the second cluster to reach Redis');
      const checkpoint = savedCheckpoint(fixture);
      assert.match(checkpoint, /^epoch=1;server=\d+\/1;/, `the saved checkpoint names the epoch and the new server: ${checkpoint}`);
      assert.equal(await fixture.service.stop(), 0);

      const events = await readWholeLog(fixture.dataDir);
      const fromB = events.filter((e) => e.source.position && parseVersion(e.source.version).commitPosition !== 0n && versionEpoch(e.source.version) === 1);
      assert.ok(fromB.length > 0, 'events of the second cluster carry epoch 1');
      const highestA = events.filter((e) => versionEpoch(e.source.version) === 0).map((e) => e.source.version).sort().pop()!;
      assert.ok(fromB.every((e) => e.source.version > highestA), 'every epoch-1 version sorts above every epoch-0 one');
      console.log(`      first cluster saved at ${formatLsn(savedLsn)}, second cluster at ${bLsn}; ${fromB.length} events under epoch 1`);
    } finally {
      await fixture.tearDown();
      await a.stop();
      await b.stop();
    }
  });

  it('a restore from backup onto a timeline forked before the saved position (WAL since past it): re-snapshotted under a new epoch, sinks equal to the restored server', async () => {
    const c = await startPostgres();
    const fixture = new PgRedisFixture(c, redis, 'epochrestore', { sourceOptions: 'snapshot: { mode: when_needed }' });
    await fixture.setUp();
    let restored: RestoredPg | undefined;
    try {
      await fixture.sql(`INSERT INTO customers (id, name) SELECT g, 'before the backup ' || g FROM generate_series(1, 200) g`);
      restored = await baseBackup(c);
      await fixture.service.start();
      // Written after the backup: the restored server never sees these.
      await fixture.sql(`INSERT INTO customers (id, name) SELECT g, 'after the backup ' || g FROM generate_series(201, 400) g;
                         DELETE FROM customers WHERE id <= 50; INSERT INTO orders SELECT g, g, 'lost' FROM generate_series(1, 30) g`);
      await converge(fixture, 'Redis to equal the original server');
      assert.equal(await fixture.service.stop(), 0);
      const saved = parseCheckpoint(savedCheckpoint(fixture));

      await restored.start();
      const url = switchTo(fixture, restored.url);
      // The restored server takes writes until its WAL is past the saved position: only the timeline tells the histories apart.
      await sql(url, `INSERT INTO customers (id, name) SELECT g, 'on the restored server ' || g FROM generate_series(150, 250) g ON CONFLICT (id) DO UPDATE SET name = excluded.name`);
      let rounds = 0;
      for (; rounds < 20 && parseLsn(await walEnd(url)) <= saved.position; rounds++) {
        await sql(url, `CREATE TABLE IF NOT EXISTS filler (pad text); INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 2000); SELECT pg_switch_wal()`);
      }
      assert.ok(parseLsn(await walEnd(url)) > saved.position, 'the restored server\'s WAL passed the saved position');
      const switchedAt = Date.now();
      await fixture.service.start({ waitUntilReady: false });
      await converge(fixture, 'Redis to equal the restored server');
      console.log(`      restored server equal in Redis ${((Date.now() - switchedAt) / 1000).toFixed(1)} s after the restart (${rounds} WAL filler rounds)`);
      const line = fixture.service.output.find((l) => /history changed/.test(l)) ?? '';
      assert.match(line, /on timeline 2, which left timeline 1 at [0-9A-F]+\/[0-9A-F]+, before the saved position/, fixture.service.recentOutput(20));
      await fixture.sql(`UPDATE customers SET n = 9 WHERE id < 100; DELETE FROM customers WHERE id > 240`);
      await converge(fixture, 'changes on the restored server to reach Redis');
      assert.match(savedCheckpoint(fixture), /^epoch=1;server=\d+\/2;/);
      assert.equal(await fixture.service.stop(), 0);
    } finally {
      await fixture.tearDown();
      await restored?.stop().catch(() => undefined);
      await c.stop();
    }
  });
});
