import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { PgRedisFixture } from '../support/pg-redis-fixture';
import { PgServer, RedisServer, startPostgres, startRedis, stopAll } from '../support/servers';
import { waitFor } from '../support/wait';
import { metricValue, readyz } from './connection-faults-helpers';

// A slot whose WAL Postgres fails to decode at the same position on every retry
// ("publication ... does not exist" after the publication was dropped, "could not
// map filenode" when DDL raced the slot's creation) can never move on. The source
// says so and what to do, and with snapshot.mode when_needed it drops the slot and
// re-snapshots, with the rows deleted meanwhile removed.
describe('a Postgres slot stuck on WAL it cannot decode', function () {
  this.timeout(180_000);
  let pg: PgServer;
  let redis: RedisServer;
  let fixture: PgRedisFixture;

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    fixture = new PgRedisFixture(pg, redis, 'undecodable');
    await fixture.setUp();
  });
  after(async () => {
    await fixture?.tearDown();
    await stopAll();
  });

  const slot = 'tidewater_undecodable_pg';
  const converge = (what: string) => waitFor(async () => (await fixture.difference()) === '', { timeoutMs: 90_000, what, describe: () => fixture.difference() });

  it('is named with the position and the fix, then with when_needed dropped and re-snapshotted with deletes honoured', async () => {
    await fixture.service.start();
    await fixture.sql(`INSERT INTO customers (id, name) SELECT g, 'customer ' || g FROM generate_series(1, 200) g`);
    await converge('Redis to hold the first rows');

    // Dropping the publication wedges the slot: the service recreates it, but the slot reads the catalog as it was.
    const [{ pubname }] = await fixture.sql('SELECT pubname FROM pg_publication');
    await fixture.sql(`DROP PUBLICATION ${pubname}`);
    const droppedAt = Date.now();
    await fixture.sql(`INSERT INTO customers (id, name) SELECT g, 'late ' || g FROM generate_series(201, 250) g; DELETE FROM customers WHERE id % 4 = 0`);
    const stuckLine = new RegExp(`fails to decode replication slot ${slot} at \\d+/[0-9A-F]+ on every retry: "publication "${pubname}" does not exist".*set snapshot\\.mode: when_needed`);
    await waitFor(async () => fixture.service.output.some((l) => stuckLine.test(l)), { timeoutMs: 90_000, what: 'the stuck slot named with the fix', describe: () => fixture.service.recentOutput(12) });
    console.log(`      stuck slot reported ${Date.now() - droppedAt} ms after the publication was dropped:\n      ${fixture.service.output.find((l) => stuckLine.test(l))}`);
    const ready = await readyz(fixture.service);
    assert.equal(ready.status, 503);
    assert.match(ready.body, /fails to decode replication slot/, `/readyz names the cause:\n${ready.body}`);
    assert.equal(metricValue(await fixture.service.metrics(), 'cdc_source_up{source="undecodable-pg"}'), 0);
    assert.equal(await fixture.service.stop(), 0);

    const config = readFileSync(fixture.service.configPath, 'utf8');
    writeFileSync(fixture.service.configPath, config.replace(/(tables: \[[^\]]*\])/, '$1, snapshot: { mode: when_needed }'));
    await fixture.service.start({ waitUntilReady: false });
    await converge('Redis to equal Postgres after the re-snapshot');
    assert.ok(fixture.service.output.some((l) => /fails to decode replication slot.*dropping the slot and re-snapshotting/.test(l)), fixture.service.recentOutput());
    await fixture.sql(`DELETE FROM customers WHERE id = 1; INSERT INTO customers (id, name) VALUES (1000, 'after the re-snapshot')`);
    await converge('later changes to flow');
    assert.equal(await fixture.service.stop(), 0);
  });
});
