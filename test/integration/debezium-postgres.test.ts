import { strict as assert } from 'node:assert';
import { PgRedisFixture } from '../support/pg-redis-fixture';
import { KafkaMock, PgServer, RedisServer, startKafkaMock, startPostgres, startRedis, stopAll } from '../support/servers';
import { waitFor } from '../support/wait';
import { readTopic } from './debezium-consumer';

const ITEMS = { items: `SELECT id::text AS k, to_jsonb(items)::text AS doc FROM items` };

/**
 * The service with log: { type: kafka, format: debezium } on a real Postgres:
 * the Redis sink converges as always (it reads the native topic), and the
 * Debezium topic holds the snapshot as op "r" and the streamed changes with
 * Postgres's own LSN, transaction id and commit time, as Debezium would write them.
 */
describe('Postgres → service → Kafka log with Debezium topics (mock cluster)', function () {
  this.timeout(120_000);
  let pg: PgServer;
  let redis: RedisServer;
  let mock: KafkaMock;
  let fixture: PgRedisFixture;

  before(async () => {
    [pg, redis, mock] = await Promise.all([
      startPostgres(),
      startRedis(),
      startKafkaMock({ brokers: 1, topics: [{ name: 'dbz1.changes', partitions: 4 }, { name: 'dbz1-pg.public.items', partitions: 2 }] }),
    ]);
  });
  after(async () => {
    await fixture?.tearDown();
    await mock?.stop();
    await stopAll();
  });

  const read = (topic: string, count: number) => readTopic(mock.brokers, topic, count);

  it('snapshot rows as op "r" marked "first"/"last", then c/u/d with lsn, txId and the transaction block; the sinks unaffected', async () => {
    fixture = new PgRedisFixture(pg, redis, 'dbz1', {
      schema: 'CREATE TABLE items (id int PRIMARY KEY, name text)',
      expectedRows: ITEMS,
      log: `{ type: kafka, brokers: [${mock.brokers.join(', ')}], partitions: 4, sessionTimeoutMs: 6000, idempotent: false, format: debezium }`,
    });
    await fixture.setUp();
    await fixture.sql(`INSERT INTO items VALUES (1, 'one'), (2, 'two')`);
    await fixture.service.start();
    await fixture.sql(`BEGIN; INSERT INTO items VALUES (3, 'three'); UPDATE items SET name = 'uno' WHERE id = 1; DELETE FROM items WHERE id = 2; COMMIT`);
    await waitFor(async () => (await fixture.difference()) === '', { timeoutMs: 30_000, what: 'Redis equal to Postgres', describe: () => fixture.difference() });
    const [{ xid, lsn }] = await fixture.sql(`SELECT xmin::text::bigint AS xid, pg_current_wal_lsn()::text AS lsn FROM items WHERE id = 3`);

    // 2 snapshot rows (not the truncate our snapshot writes below them: Debezium has none), then c, u, d and the delete's tombstone.
    const messages = await read('dbz1-pg.public.items', 6);
    const values = messages.map((m) => (m.value ? JSON.parse(m.value.toString()) : null));
    const ops = values.map((v) => v?.op ?? 'tombstone');
    assert.deepEqual(ops.filter((op) => op === 'r').length, 2, ops.join(','));
    assert.ok(!ops.includes('t'), `no truncate: ${ops.join(',')}`);
    // Debezium's marks: the snapshot's first and last row (the one table's two rows).
    assert.deepEqual(values.filter((v) => v?.op === 'r').map((v) => v.source.snapshot), ['first', 'last']);
    for (const v of values.filter((v) => v?.op === 'r')) assert.equal(v.transaction, null);
    const streamed = values.filter((v) => v && ['c', 'u', 'd'].includes(v.op));
    assert.deepEqual(streamed.map((v) => v.op).sort(), ['c', 'd', 'u']);
    for (const v of streamed) {
      assert.equal(v.source.connector, 'postgresql');
      assert.equal(v.source.name, 'dbz1-pg');
      assert.equal(v.source.db, 'dbz1');
      assert.equal(v.source.snapshot, 'false');
      assert.equal(v.source.txId, Number(xid), 'the transaction id Postgres assigned');
      assert.equal(typeof v.source.lsn, 'number');
      assert.ok(v.source.lsn > 0 && v.source.lsn <= lsnNumber(String(lsn)), `lsn ${v.source.lsn} within the WAL written`);
      assert.equal(v.transaction.id.split(':')[0], String(xid));
      assert.equal(v.source.ts_us, v.source.ts_ms * 1000);
    }
    assert.deepEqual(streamed.map((v) => v.transaction.total_order).sort(), [1, 2, 3]);
    assert.equal(streamed.find((v) => v.op === 'd').before.id, 2, 'the delete\'s before image (the key, with REPLICA IDENTITY DEFAULT)');
    assert.equal(ops[ops.indexOf('d') + 1], 'tombstone', 'a tombstone right after the delete');
  });
});

function lsnNumber(text: string): number {
  const [hi, lo] = text.split('/');
  return parseInt(hi, 16) * 2 ** 32 + parseInt(lo, 16);
}
