import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, KafkaMock, MariadbServer, mariadbQuery, RedisServer, startKafkaMock, startMariadb, startRedis, stopAll } from '../support/servers';
import { ServiceProcess, writeConfig } from '../support/service-process';
import { readTopic } from './debezium-consumer';

/**
 * The service on a real MariaDB with log: { type: kafka, format: debezium }:
 * the Debezium topic <source>.<database>.<table> says connector "mariadb" and
 * carries the binlog file, position, GTID and server id of each transaction.
 */
describe('MariaDB → service → Kafka log with Debezium topics (mock cluster)', function () {
  this.timeout(120_000);
  let mariadb: MariadbServer;
  let redis: RedisServer;
  let mock: KafkaMock;
  let service: ServiceProcess | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'cdc-dbz-maria-'));

  before(async () => {
    [mariadb, redis, mock] = await Promise.all([
      startMariadb(),
      startRedis(),
      startKafkaMock({ brokers: 1, topics: [{ name: 'dbzm.changes', partitions: 4 }, { name: 'dbzm-maria.dbzm.items', partitions: 2 }] }),
    ]);
  });
  after(async () => {
    await service?.stop();
    await mock?.stop();
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  const read = (topic: string, count: number) => readTopic(mock.brokers, topic, count);

  it('connector "mariadb" with file, pos, row, gtid and server_id from the binlog; snapshot rows as op "r"', async () => {
    await mariadbQuery(mariadb.port, `CREATE DATABASE dbzm; CREATE TABLE dbzm.items (id INT PRIMARY KEY, name VARCHAR(20)); INSERT INTO dbzm.items VALUES (1, 'one'), (2, 'two')`);
    const port = await freePort();
    const config = writeConfig(join(dir, 'cdc.yaml'), `service: { name: dbzm, dataDir: ./var, http: { port: ${port} } }
log: { type: kafka, brokers: [${mock.brokers.join(', ')}], partitions: 4, sessionTimeoutMs: 6000, idempotent: false, format: debezium }
sources:
  - { name: dbzm-maria, type: mysql, url: "${mariadb.url}", serverId: 5401, tables: [dbzm.items], heartbeatIntervalMs: 500 }
sinks:
  - { name: cache, type: redis, url: "${redis.url}", keyPrefix: "dbzm:", tables: ["*"] }
`);
    service = new ServiceProcess(config, port);
    await service.start();
    await mariadbQuery(mariadb.port, `BEGIN; INSERT INTO dbzm.items VALUES (3, 'three'); UPDATE dbzm.items SET name = 'uno' WHERE id = 1; DELETE FROM dbzm.items WHERE id = 2; COMMIT`);
    const gtid = (await mariadbQuery(mariadb.port, 'SELECT @@gtid_binlog_pos')).trim();
    await mariadbQuery(mariadb.port, `INSERT INTO dbzm.items VALUES (4, 'four'), (5, 'five')`);

    // 2 snapshot rows (not the truncate our snapshot writes below them: Debezium has none), c, u, d and the delete's tombstone, then 2 c of one statement.
    const values = (await read('dbzm-maria.dbzm.items', 8)).map((m) => (m.value ? JSON.parse(m.value.toString()) : null));
    const rows = values.filter((v) => v?.op === 'r');
    assert.equal(rows.length, 2);
    assert.deepEqual(rows.map((v) => v.source.snapshot), ['first', 'last'], 'Debezium\'s marks: the snapshot\'s first and last row');
    for (const v of rows) {
      // The snapshot's GTID state says MariaDB (the server wrote transactions before it).
      assert.equal(v.source.connector, 'mariadb');
      assert.equal(v.source.file.startsWith('binlog.'), true);
      assert.equal(v.transaction, null);
    }
    // Keys spread over the topic's partitions: order the transaction's changes by their place in it.
    const pair = values.filter((v) => v?.op === 'c' && v.after.id >= 4).sort((a, b) => a.after.id - b.after.id);
    assert.deepEqual(pair.map((v) => v.source.row), [0, 1], 'two rows of one rows event: rows 0 and 1');
    assert.equal(pair[0].source.pos, pair[1].source.pos, 'the same rows event');
    // Every pos is where MariaDB itself says a rows event starts.
    const events = (await mariadbQuery(mariadb.port, `SHOW BINLOG EVENTS IN '${pair[0].source.file}'`)).split('\n').map((line) => line.split('\t'));
    const rowsEventStarts = new Set(events.filter((e) => /_rows/i.test(e[2] ?? '')).map((e) => Number(e[1])));
    for (const v of [...pair]) assert.ok(rowsEventStarts.has(v.source.pos), `pos ${v.source.pos} starts a rows event (${[...rowsEventStarts].join(',')})`);
    const streamed = values.filter((v) => v && ['c', 'u', 'd'].includes(v.op) && !pair.includes(v)).sort((a, b) => a.transaction.total_order - b.transaction.total_order);
    for (const v of streamed) assert.ok(rowsEventStarts.has(v.source.pos), `pos ${v.source.pos} starts a rows event`);
    assert.deepEqual(streamed.map((v) => v.op), ['c', 'u', 'd']);
    for (const [i, v] of streamed.entries()) {
      assert.deepEqual(
        { connector: v.source.connector, name: v.source.name, db: v.source.db, table: v.source.table, snapshot: v.source.snapshot, gtid: v.source.gtid, server_id: v.source.server_id, row: v.source.row, thread: v.source.thread, query: v.source.query },
        // Each statement is its own rows event holding one row: row 0 of it (Debezium's row is the index within the rows event).
        { connector: 'mariadb', name: 'dbzm-maria', db: 'dbzm', table: 'items', snapshot: 'false', gtid, server_id: 1, row: 0, thread: null, query: null },
      );
      assert.match(v.source.file, /^binlog\.\d{6}$/);
      assert.ok(Number.isInteger(v.source.pos) && v.source.pos > 4, `pos ${v.source.pos}`);
      assert.deepEqual(v.transaction, { id: gtid, total_order: i + 1, data_collection_order: i + 1 });
    }
    // pos: where each change's rows event starts, in binlog order.
    assert.ok(streamed[0].source.pos < streamed[1].source.pos && streamed[1].source.pos < streamed[2].source.pos, streamed.map((v) => v.source.pos).join(','));
    assert.deepEqual(streamed[1].before, { id: 1, name: 'one' });
    assert.deepEqual(streamed[1].after, { id: 1, name: 'uno' });
    assert.equal(values.filter((v) => v === null).length, 1, 'one tombstone, for the delete');
    assert.ok(!values.some((v) => v?.op === 't'), 'no truncate');
  });
});
