import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { Client } from 'pg';
import { PgRedisFixture } from '../support/pg-redis-fixture';
import { PgServer, RedisServer, startPostgres, startRedis, stopAll } from '../support/servers';
import { runCli } from '../support/service-process';
import { waitFor } from '../support/wait';
import { metricValue, readyz, restarts } from './connection-faults-helpers';

// Issue 12.4: a slot the server invalidated (max_slot_wal_keep_size) is noticed at once and,
// with snapshot.mode when_needed, re-snapshotted with the rows deleted meanwhile removed.
describe('source history: a Postgres slot invalidated by max_slot_wal_keep_size', function () {
  this.timeout(180_000);
  let pg: PgServer;
  let redis: RedisServer;
  let fixture: PgRedisFixture;

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres({ settings: { max_slot_wal_keep_size: '1MB' } }), startRedis()]);
    fixture = new PgRedisFixture(pg, redis, 'slotlost');
    await fixture.setUp();
  });
  after(async () => {
    await fixture?.tearDown();
    await stopAll();
  });

  const slot = 'tidewater_slotlost_pg';
  const source = 'slotlost-pg';
  const converge = (what: string) => waitFor(async () => (await fixture.difference()) === '', { timeoutMs: 60_000, what, describe: () => fixture.difference() });

  /** Writes and switches WAL segments, then checkpoints, until the server marks the slot lost. */
  async function invalidateSlot(): Promise<void> {
    const admin = new Client({ connectionString: pg.url });
    await admin.connect();
    try {
      await admin.query('CREATE TABLE IF NOT EXISTS wal_filler (id serial PRIMARY KEY, pad text)');
      for (let round = 0; round < 20; round++) {
        for (let i = 0; i < 3; i++) {
          await admin.query(`INSERT INTO wal_filler (pad) SELECT repeat('x', 500) FROM generate_series(1, 500)`);
          await admin.query('SELECT pg_switch_wal()');
        }
        await admin.query('CHECKPOINT');
        const { rows } = await admin.query<{ wal_status: string }>('SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1', [slot]);
        if (rows[0]?.wal_status === 'lost') return;
      }
      throw new Error(`slot ${slot} is still not lost after 20 rounds of WAL switches and checkpoints`);
    } finally {
      await admin.end();
    }
  }

  it('is reported (log naming the setting, /readyz, metrics, status) and, with when_needed, re-snapshotted with deletes honoured', async () => {
    await fixture.service.start();
    await fixture.sql(`INSERT INTO customers (id, name) SELECT g, 'customer ' || g FROM generate_series(1, 300) g`);
    await fixture.sql(`INSERT INTO order_items SELECT g, 1, g FROM generate_series(1, 100) g`);
    await converge('Redis to hold the first rows');
    assert.equal(await fixture.service.stop(), 0);

    await invalidateSlot();
    await fixture.sql(`DELETE FROM customers WHERE id % 3 = 0; UPDATE customers SET n = n + 7 WHERE id % 3 = 1; DELETE FROM order_items WHERE order_id > 50`);
    await fixture.sql(`INSERT INTO orders VALUES (1, 1, 'written while the slot was lost')`);

    // Default mode (initial): the source refuses to stream and says why, within seconds.
    const startedAt = Date.now();
    await fixture.service.start({ waitUntilReady: false });
    await waitFor(async () => /max_slot_wal_keep_size/.test(fixture.service.output.join('\n')), { timeoutMs: 15_000, what: 'a log line naming max_slot_wal_keep_size', describe: () => fixture.service.recentOutput() });
    const noticedMs = Date.now() - startedAt;
    const line = fixture.service.output.find((l) => /max_slot_wal_keep_size/.test(l))!;
    assert.match(line, new RegExp(`slot ${slot} was invalidated.*wal_status = 'lost'.*max_slot_wal_keep_size \\(1MB\\).*set snapshot.mode: when_needed`));
    const ready = await readyz(fixture.service);
    assert.equal(ready.status, 503);
    assert.match(ready.body, new RegExp(`${source}[\\s\\S]*max_slot_wal_keep_size`), `/readyz names the source and the cause:\n${ready.body}`);
    const metrics = await fixture.service.metrics();
    assert.equal(metricValue(metrics, `cdc_source_up{source="${source}"}`), 0);
    assert.ok(restarts(metrics, `source ${source}`).reasons.includes('slot_lost'), `cdc_component_restarts_total{reason="slot_lost"}:\n${metrics}`);
    const status = runCli(['status', '-c', fixture.service.configPath], fixture.service.env);
    assert.match(status.stdout + status.stderr, /max_slot_wal_keep_size/, `cdc status tells:\n${status.stdout}${status.stderr}`);
    assert.equal(await fixture.service.stop(), 0);
    console.log(`      lost slot reported ${noticedMs} ms after start`);

    // when_needed: the lost slot is dropped, the tables re-snapshotted (truncate first), streaming resumes.
    const config = readFileSync(fixture.service.configPath, 'utf8');
    writeFileSync(fixture.service.configPath, config.replace(/(tables: \[[^\]]*\])/, '$1, snapshot: { mode: when_needed }'));
    await fixture.service.start({ waitUntilReady: false });
    await converge('Redis to equal Postgres after the re-snapshot');
    await waitFor(() => fixture.service.isReady(), { timeoutMs: 30_000, what: 'the service to become ready again' });
    assert.ok(fixture.service.output.some((l) => /dropped the slot, re-snapshotting/.test(l)), fixture.service.recentOutput());
    await fixture.sql(`DELETE FROM customers WHERE id = 1; INSERT INTO customers (id, name) VALUES (1000, 'after the re-snapshot')`);
    await converge('later changes to flow');
    assert.equal(await fixture.service.stop(), 0);
  });
});
