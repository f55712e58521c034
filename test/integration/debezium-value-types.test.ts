import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KafkaMessage } from 'kafkajs';
import { PgRedisFixture } from '../support/pg-redis-fixture';
import { freePort, KafkaMock, MariadbServer, mariadbQuery, PgServer, RedisServer, startKafkaMock, startMariadb, startPostgres, startRedis, stopAll } from '../support/servers';
import { runCli, ServiceProcess, writeConfig } from '../support/service-process';
import { waitFor } from '../support/wait';
import { headerText, readTopic, rowText } from './debezium-consumer';

/**
 * Real columns of each type class through the service into a Debezium topic
 * (Kafka mock), checked as exact JSON text against what Debezium's connectors
 * write with default settings (docs/debezium.md; the per-type rules and the
 * documented examples are in test/fixtures/debezium/value-types.json). The
 * same row comes once from the snapshot and once streamed, then moves to a new
 * primary key (delete + tombstone + create with Debezium's key headers), then
 * a resync reads it again as Debezium's incremental snapshot.
 */

/** One row's `after` as Debezium's PostgreSQL connector writes it, for primary key `id`. */
const pgAfter = (id: number) =>
  `{"id":${id},"small":32767,"n":-5,"big":9007199254740993,"price":"AeI6","free":{"scale":5,"value":"DA=="},` +
  `"ts":1529507596945104,"ts3":1529507596945,"tstz":"2018-06-20T13:13:16.945104Z","tstz3":"2018-06-20T15:13:16.900Z",` +
  `"d":19782,"t":45296789000,"t3":45296789,"ttz":"10:34:56.5Z","iv":37091106500000,"b":"3q2+7w==",` +
  `"j":"{\\"b\\": 1,  \\"a\\":[1,2]}","jb":"{\\"a\\": [1, 2.50], \\"b\\": 1}","flag":true,"bit1":true,"bits":"BQA=",` +
  `"u":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11","txt":"hello","f8":1.5,"nul":null,"ia":[1,9007199254740993,null],"na":["AJY=","nA=="]}`;

const PG_SCHEMA = `CREATE TABLE kinds (id int8 PRIMARY KEY, small int2, n int4, big int8, price numeric(10,2), free numeric,
  ts timestamp, ts3 timestamp(3), tstz timestamptz, tstz3 timestamptz(3), d date, t time, t3 time(3), ttz timetz, iv interval,
  b bytea, j json, jb jsonb, flag bool, bit1 bit(1), bits bit(10), u uuid, txt text, f8 float8, nul int4, ia int8[], na numeric(10,2)[])`;
const pgRow = (id: number) => `INSERT INTO kinds VALUES (${id}, 32767, -5, 9007199254740993, 1234.50, 0.000120,
  '2018-06-20 15:13:16.945104', '2018-06-20 15:13:16.945', '2018-06-20 15:13:16.945104+02', '2018-06-20 15:13:16.9+00', '2024-02-29',
  '12:34:56.789', '12:34:56.789', '12:34:56.5+02', '1 year 2 mons 3 days 04:05:06.5', '\\xdeadbeef', '{"b": 1,  "a":[1,2]}',
  '{"b": 1, "a": [1, 2.50]}', true, B'1', B'0000000101', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'hello', 1.5, NULL,
  '{1,9007199254740993,NULL}', '{1.5,-1}')`;

/** The same for MariaDB (connector "mariadb", time.precision.mode=adaptive_time_microseconds). */
const mariaAfter = (id: number) =>
  `{"id":${id},"tiny":1,"big":9007199254740993,"ubig":-1,"price":"AeI6","dt":1529476623000,"dt6":1529476623123456,` +
  `"ts":"2018-06-20T13:37:03.120Z","d":19782,"t":45296000000,"b":"3q2+7w==","j":"{\\"b\\": 1,  \\"a\\":[1,2]}",` +
  `"bit1":true,"bits":"BQA=","e":"b","s":"a,c","u":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11","f":1.5,"nul":null}`;

const MARIA_SCHEMA = `CREATE TABLE dbzvm.kinds (id BIGINT PRIMARY KEY, tiny TINYINT(1), big BIGINT, ubig BIGINT UNSIGNED, price DECIMAL(10,2),
  dt DATETIME, dt6 DATETIME(6), ts TIMESTAMP(3) NULL, d DATE, t TIME, b BLOB, j JSON, bit1 BIT(1), bits BIT(10),
  e ENUM('a','b'), s SET('a','b','c'), u CHAR(36), f DOUBLE, nul INT)`;
const mariaRow = (id: number) => `SET time_zone = '+00:00'; INSERT INTO dbzvm.kinds VALUES (${id}, 1, 9007199254740993, 18446744073709551615, 1234.50,
  '2018-06-20 06:37:03', '2018-06-20 06:37:03.123456', '2018-06-20 13:37:03.12', '2024-02-29', '12:34:56', 0xDEADBEEF,
  '{"b": 1,  "a":[1,2]}', b'1', b'0000000101', 'b', 'a,c', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 1.5, NULL)`;

interface Seen {
  op: string;
  value: string | null;
  parsed: Record<string, any> | null;
  message: KafkaMessage;
}

const seen = (messages: KafkaMessage[]): Seen[] =>
  messages.map((message) => {
    const value = message.value?.toString() ?? null;
    const parsed = value === null ? null : JSON.parse(value);
    return { op: parsed?.op ?? 'tombstone', value, parsed, message };
  });

/** Checks the 7 messages: snapshot r, streamed c, the key move (d, tombstone, c), the resync's r rows. */
function checkStory(messages: Seen[], after: (id: number) => string, keyOnlyBefore: boolean, snapshotMarks = ['last']): void {
  assert.deepEqual(messages.map((m) => m.op), ['r', 'c', 'd', 'tombstone', 'c', 'r', 'r']);
  const [snapshot, created, deleted, tombstone, moved, resync1, resync3] = messages;
  assert.equal(rowText(snapshot.value!, 'after'), after(1), 'snapshot row, exact JSON');
  assert.ok(snapshotMarks.includes(snapshot.parsed!.source.snapshot), `the snapshot row's mark ${snapshot.parsed!.source.snapshot}, expected ${snapshotMarks.join(' or ')}`);
  assert.equal(rowText(created.value!, 'after'), after(2), 'streamed row, exact JSON');
  assert.equal(created.parsed!.source.snapshot, 'false');
  assert.equal(rowText(deleted.value!, 'before'), keyOnlyBefore ? '{"id":2}' : after(2), 'the old key\'s delete');
  assert.equal(headerText(deleted.message, '__debezium.newkey'), '{"id":3}');
  assert.equal(headerText(tombstone.message, '__debezium.newkey'), '{"id":3}', 'the tombstone carries the delete\'s headers');
  assert.equal(tombstone.message.key!.toString(), '{"id":2}');
  assert.equal(rowText(moved.value!, 'after'), after(3));
  assert.equal(headerText(moved.message, '__debezium.oldkey'), '{"id":2}');
  assert.equal(moved.message.key!.toString(), '{"id":3}');
  assert.equal(headerText(created.message, '__debezium.oldkey'), undefined, 'a plain insert has no key header');
  for (const [row, id] of [[resync1, 1], [resync3, 3]] as const) {
    assert.equal(rowText(row.value!, 'after'), after(id), `resync row ${id}`);
    assert.equal(row.parsed!.source.snapshot, 'incremental', 'a resync is Debezium\'s incremental snapshot');
    assert.equal(row.message.key!.toString(), `{"id":${id}}`);
  }
}

describe('Debezium topics: value types of real Postgres and MariaDB columns (mock cluster)', function () {
  this.timeout(180_000);
  let pg: PgServer;
  let mariadb: MariadbServer;
  let redis: RedisServer;
  let mock: KafkaMock;
  let fixture: PgRedisFixture | undefined;
  let service: ServiceProcess | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'cdc-dbz-types-'));

  before(async () => {
    [pg, mariadb, redis, mock] = await Promise.all([
      startPostgres(),
      startMariadb(),
      startRedis(),
      startKafkaMock({
        brokers: 1,
        topics: [
          { name: 'dbzv.changes', partitions: 4 },
          { name: 'dbzv-pg.public.kinds', partitions: 1 },
          { name: 'dbzv-pg.public.nopk', partitions: 1 },
          { name: 'dbzvm.changes', partitions: 4 },
          { name: 'dbzvm-maria.dbzvm.kinds', partitions: 1 },
        ],
      }),
    ]);
  });
  after(async () => {
    await fixture?.tearDown();
    await service?.stop();
    await mock?.stop();
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  async function resync(configPath: string, env: NodeJS.ProcessEnv, source: string, table: string, output: () => string[]): Promise<void> {
    const done = output().filter((l) => l.includes('resync of table done')).length;
    const result = runCli(['resync', '-c', configPath, '--source', source, '--table', table], env);
    assert.equal(result.code, 0, result.stderr);
    await waitFor(() => output().filter((l) => l.includes('resync of table done')).length > done, { timeoutMs: 60_000, what: 'the resync to finish', describe: () => output().slice(-5).join('\n') });
  }

  it('Postgres: int64 numbers, Decimal and VariableScaleDecimal, adaptive temporals, ZonedTimestamp/ZonedTime, MicroDuration, bytes, JSON text, bits, uuid, arrays', async () => {
    fixture = new PgRedisFixture(pg, redis, 'dbzv', {
      schema: `${PG_SCHEMA}; CREATE TABLE nopk (a int8, b text); ALTER TABLE nopk REPLICA IDENTITY FULL; INSERT INTO nopk VALUES (1, 'one')`,
      expectedRows: { kinds: 'SELECT id::text AS k, to_jsonb(kinds)::text AS doc FROM kinds', nopk: 'SELECT a::text AS k, to_jsonb(nopk)::text AS doc FROM nopk' },
      noSinks: true,
      log: `{ type: kafka, brokers: [${mock.brokers.join(', ')}], partitions: 4, sessionTimeoutMs: 6000, idempotent: false, format: debezium }`,
    });
    await fixture.setUp();
    await fixture.sql(pgRow(1));
    await fixture.service.start();
    await fixture.sql(pgRow(2));
    await fixture.sql('UPDATE kinds SET id = 3 WHERE id = 2');
    await fixture.sql(`INSERT INTO nopk VALUES (9007199254740993, 'two')`);
    await resync(fixture.service.configPath, fixture.service.env, 'dbzv-pg', 'public.kinds', () => fixture!.service.output);

    const messages = seen(await readTopic(mock.brokers, 'dbzv-pg.public.kinds', 7));
    // Two tables, read in parallel: the kinds row is the snapshot's first or last.
    checkStory(messages, pgAfter, true, ['first', 'last']);
    // A table without a primary key (REPLICA IDENTITY FULL): Debezium writes a null message key.
    const noKey = seen(await readTopic(mock.brokers, 'dbzv-pg.public.nopk', 2));
    assert.deepEqual(noKey.map((m) => [m.op, m.message.key, rowText(m.value!, 'after')]), [['r', null, '{"a":1,"b":"one"}'], ['c', null, '{"a":9007199254740993,"b":"two"}']]);
    const streamed = messages[1].parsed!.source;
    assert.match(streamed.sequence, /^\["\d+","\d+"\]$/, 'sequence: [last commit LSN, LSN] as decimal strings');
    const [lastCommit, lsn] = JSON.parse(streamed.sequence).map(Number);
    assert.equal(lsn, streamed.lsn);
    assert.ok(lastCommit > 0 && lastCommit <= lsn, `last commit end ${lastCommit} at or before this change's LSN ${lsn}`);
    assert.equal(typeof streamed.txId, 'number');
  });

  it('MariaDB: connector "mariadb", int64 numbers (unsigned as long), Decimal, DATETIME ms/µs, ZonedTimestamp, MicroTime, bytes, JSON text, bits, enum and set', async () => {
    await mariadbQuery(mariadb.port, `CREATE DATABASE dbzvm; ${MARIA_SCHEMA}; ${mariaRow(1)}`);
    const port = await freePort();
    const config = writeConfig(join(dir, 'cdc.yaml'), `service: { name: dbzvm, dataDir: ./var, http: { port: ${port} } }
log: { type: kafka, brokers: [${mock.brokers.join(', ')}], partitions: 4, sessionTimeoutMs: 6000, idempotent: false, format: debezium }
sources:
  - { name: dbzvm-maria, type: mysql, url: "${mariadb.url}", serverId: 5402, tables: [dbzvm.kinds], heartbeatIntervalMs: 500 }
sinks: []
`);
    service = new ServiceProcess(config, port);
    await service.start();
    await mariadbQuery(mariadb.port, mariaRow(2));
    await mariadbQuery(mariadb.port, 'UPDATE dbzvm.kinds SET id = 3 WHERE id = 2');
    await resync(config, {}, 'dbzvm-maria', 'dbzvm.kinds', () => service!.output);

    const messages = seen(await readTopic(mock.brokers, 'dbzvm-maria.dbzvm.kinds', 7));
    checkStory(messages, mariaAfter, false);
    for (const m of messages.filter((m) => m.parsed)) assert.equal(m.parsed!.source.connector, 'mariadb', `${m.op}: connector`);
    const streamed = messages[1].parsed!.source;
    assert.equal(streamed.server_id, 1, 'the GTID\'s server id');
    assert.match(streamed.gtid, /^0-1-\d+$/);
  });
});
