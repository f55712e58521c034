import { strict as assert } from 'node:assert';
import { readWholeLog } from '../support/pg-redis-fixture';
import { ChangeEvent } from '../../core/event/change-event';
import { MariadbServer, RedisServer, startMariadb, startRedis, stopAll } from '../support/servers';
import { waitFor } from '../support/wait';
import { describeDifference, expectedRows, MysqlRedisFixture } from './mysql-fixture';

const TYPES_SCHEMA = `CREATE TABLE types (
  id INT PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED, mi MEDIUMINT, miu MEDIUMINT UNSIGNED,
  i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED, d DECIMAL(65,30), f FLOAT, db DOUBLE,
  b1 BIT(1), b10 BIT(10), b64 BIT(64), c CHAR(10), vc VARCHAR(100), tx TEXT, bin BINARY(4), vb VARBINARY(10), bl BLOB,
  dt DATE, tm TIME(6), dtm DATETIME(6), ts TIMESTAMP(6) NULL, y YEAR, e ENUM('a','b,c','x''y'), s SET('a','b','c'), j JSON
) DEFAULT CHARSET = utf8mb4`;

const TYPES_COLUMNS = 'id, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, d, f, db, b1, b10, b64, c, vc, tx, bin, vb, bl, dt, tm, dtm, ts, y, e, s, j';
const TYPES_VALUES = [
  `-128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615,
   '-12345678901234567890123456789012345.123456789012345678901234567891', 3.40282e38, 1.7976931348623157e308,
   b'1', b'1000000001', b'1111111111111111111111111111111111111111111111111111111111111111', 'abc', 'héllo 😀 ünïcode', 'text 😀',
   x'00010203', x'ff00', x'deadbeef', '2024-02-29', '-838:59:59.000000', '2024-02-29 12:34:56.123456', '2038-01-19 03:14:07.999999', 2024,
   'b,c', 'a,c', '{"a": 1, "big": 12345678901234567890, "f": 1.5, "n": null, "arr": [1, "x"], "s": "😀"}'`,
  `0, 0, 0, 0, 0, 0, 0, 0, 9007199254740993, 0, '0.000000000000000000000000000001', -1.5, 0.1,
   b'0', b'0', b'0', '', '', '', x'00000000', x'', x'', '1000-01-01', '-00:00:00.500000', '1000-01-01 00:00:00', '1970-01-01 00:00:01', 0,
   'x''y', '', '"just a string"'`,
];

/** Each column as MariaDB itself renders it in the JSON forms of docs/architecture.md §2 (see connectors/mysql/types.ts). */
const TYPES_DOC = `JSON_OBJECT('id', id, 'ti', ti, 'tiu', tiu, 'si', si, 'siu', siu, 'mi', mi, 'miu', miu, 'i', i, 'iu', iu,
  'bi', CAST(bi AS CHAR), 'biu', CAST(biu AS CHAR), 'd', CAST(d AS CHAR), 'f', f, 'db', db,
  'b1', IF(b1 IS NULL, NULL, JSON_EXTRACT(IF(b1 = 1, 'true', 'false'), '$')), 'b10', b10 + 0, 'b64', CAST(b64 + 0 AS CHAR),
  'c', c, 'vc', vc, 'tx', tx, 'bin', TO_BASE64(bin), 'vb', TO_BASE64(vb), 'bl', TO_BASE64(bl),
  'dt', CAST(dt AS CHAR), 'tm', TIME_FORMAT(tm, '%H:%i:%s.%f'), 'dtm', DATE_FORMAT(dtm, '%Y-%m-%dT%H:%i:%s.%f'),
  'ts', DATE_FORMAT(ts, '%Y-%m-%dT%H:%i:%s.%fZ'), 'y', y + 0, 'e', e,
  's', IF(s IS NULL, NULL, IF(s = '', JSON_ARRAY(), JSON_EXTRACT(CONCAT('["', REPLACE(s, ',', '","'), '"]'), '$'))),
  'j', JSON_EXTRACT(j, '$'))`;

const COUNTERS_SCHEMA = `CREATE TABLE accounts (id INT PRIMARY KEY, n INT NOT NULL, note VARCHAR(40));
  CREATE TABLE moves (account INT, seq INT, amount BIGINT NOT NULL, PRIMARY KEY (account, seq))`;
const COUNTERS_DOC = {
  accounts: { key: 'id', doc: `JSON_OBJECT('id', id, 'n', n, 'note', note)` },
  moves: { key: `CONCAT(account, ':', seq)`, doc: `JSON_OBJECT('account', account, 'seq', seq, 'amount', CAST(amount AS CHAR))` },
};

describe('MariaDB → service → Redis, end to end', function () {
  this.timeout(120_000);
  let mariadb: MariadbServer;
  let redis: RedisServer;
  let fixture: MysqlRedisFixture;
  let testNumber = 0;

  before(async () => {
    [mariadb, redis] = await Promise.all([startMariadb(), startRedis()]);
  });
  after(async () => stopAll());
  afterEach(async () => fixture?.tearDown());

  const converge = async (docs: Parameters<typeof expectedRows>[2], what: string, timeoutMs = 30_000) => {
    const difference = async () => describeDifference(await expectedRows(mariadb, fixture.db, docs), await fixture.actual());
    await waitFor(async () => (await difference()) === '', { timeoutMs, what, describe: difference, intervalMs: 200 });
  };

  it('round-trips every type exactly, from the snapshot and from the binlog, and keeps lag near zero when idle', async () => {
    fixture = new MysqlRedisFixture(mariadb, redis, `types${++testNumber}`, ['types']);
    await fixture.setUp(TYPES_SCHEMA);
    await fixture.sql(`INSERT INTO types (${TYPES_COLUMNS}) VALUES (1, ${TYPES_VALUES[0]}), (2, ${TYPES_VALUES[1]}); INSERT INTO types (id) VALUES (3)`);
    await fixture.service.start();
    await converge({ types: { key: 'id', doc: TYPES_DOC } }, 'the snapshot of every type in Redis');

    await fixture.sql(`INSERT INTO types (${TYPES_COLUMNS}) VALUES (11, ${TYPES_VALUES[0]}), (12, ${TYPES_VALUES[1]}); INSERT INTO types (id) VALUES (13)`);
    await fixture.sql(`UPDATE types SET ${TYPES_COLUMNS.split(', ').slice(1).map((c) => `${c} = (SELECT ${c} FROM (SELECT * FROM types WHERE id = 1) one)`).join(', ')} WHERE id = 3`);
    await converge({ types: { key: 'id', doc: TYPES_DOC } }, 'streamed rows of every type in Redis');
    const doc = JSON.parse((await fixture.redis.get(`${fixture.prefix}${fixture.db}.types:11`))!);
    assert.equal(doc.biu, '18446744073709551615', 'BIGINT UNSIGNED as an exact string');
    assert.equal(doc.ts, '2038-01-19T03:14:07.999999Z', 'TIMESTAMP(6) in UTC with microseconds');
    assert.deepEqual(doc.j.big, '12345678901234567890', 'a JSON number beyond double precision keeps its digits');

    await new Promise((resolve) => setTimeout(resolve, 2500)); // idle: only heartbeats flow
    const metrics = await fixture.service.metrics();
    const source = `${fixture.db}-mysql`;
    const lag = Number(new RegExp(`cdc_source_lag_seconds\\{source="${source}"\\} (\\S+)`).exec(metrics)?.[1]);
    assert.ok(lag < 1.5, `lag on an idle server is ${lag} s (heartbeats every 0.5 s)`);
    assert.match(metrics, new RegExp(`cdc_source_backlog_bytes\\{source="${source}"\\} \\d+`));
    assert.match(metrics, new RegExp(`cdc_snapshot_rows_total\\{source="${source}",table="${fixture.db}.types"\\} 3`));
  });

  it('snapshots while writers run: Redis ends equal to MariaDB, no snapshot row read twice', async () => {
    fixture = new MysqlRedisFixture(mariadb, redis, `busy${++testNumber}`, ['accounts', 'moves']);
    await fixture.setUp(COUNTERS_SCHEMA, ', snapshot: { chunkSize: 50 }');
    const rows = Array.from({ length: 1500 }, (_, i) => `(${i + 1}, 0, 'initial')`).join(', ');
    await fixture.sql(`INSERT INTO accounts VALUES ${rows}`);
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const id = 1 + ((i * 97) % 1600);
        await fixture.sql(`BEGIN; INSERT INTO accounts VALUES (${id}, 0, 'new') ON DUPLICATE KEY UPDATE n = n + 1, note = 'moved';
          INSERT INTO moves VALUES (${id}, ${i}, ${i} * 4294967296); ${i % 7 === 6 ? `DELETE FROM accounts WHERE id = ${1 + ((i * 31) % 1600)};` : ''} COMMIT`);
      }
    })();
    await fixture.service.start();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    writing = false;
    await writer;
    await converge(COUNTERS_DOC, 'Redis to equal MariaDB after a snapshot under writes');
    await fixture.service.stop();
    const snapshotKeys = (await readLog(fixture)).filter((e) => e.op === 'r').map((e) => `${e.source.table}:${JSON.stringify(e.key)}`);
    assert.equal(new Set(snapshotKeys).size, snapshotKeys.length, 'each row is read once by the snapshot');
    assert.ok(snapshotKeys.length >= 1500);
  });

  it('loses nothing through kill -9 of the service mid-stream and a restart of MariaDB', async () => {
    fixture = new MysqlRedisFixture(mariadb, redis, `crash${++testNumber}`, ['accounts', 'moves']);
    await fixture.setUp(COUNTERS_SCHEMA);
    await fixture.service.start();
    let writing = true;
    let committed = 0;
    const writer = (async () => {
      for (let i = 0; writing || committed < 300; i++) {
        const id = 1 + (i % 40);
        try {
          // Several statements and both tables in one transaction.
          await fixture.sql(`BEGIN; INSERT INTO accounts VALUES (${id}, 0, 'tx ${i}') ON DUPLICATE KEY UPDATE n = n + 1, note = 'tx ${i}';
            INSERT INTO moves VALUES (${id}, ${i}, ${i}); UPDATE moves SET amount = amount + 1 WHERE account = ${id} AND seq < ${i} AND seq > ${i - 80}; COMMIT`);
          committed++;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 100)); // MariaDB is restarting
        }
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 700));
    await fixture.service.kill9();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await fixture.service.start();
    await new Promise((resolve) => setTimeout(resolve, 500));
    await mariadb.restart();
    await new Promise((resolve) => setTimeout(resolve, 500));
    writing = false;
    await writer;
    await converge(COUNTERS_DOC, 'Redis to equal MariaDB after kill -9 and a MariaDB restart', 60_000);
    await fixture.service.stop();
    assert.match(fixture.service.output.join('\n'), /retrying/, 'the source reconnected after the MariaDB restart');

    // Every committed change is in the log: n counts 0, 1, 2, ... per account.
    const seen = new Map<number, Set<number>>();
    for (const e of await readLog(fixture)) {
      if (e.source.table !== 'accounts' || !e.after) continue;
      seen.set(e.after.id as number, (seen.get(e.after.id as number) ?? new Set()).add(e.after.n as number));
    }
    for (const { id, n } of await fixture.sql('SELECT id, n FROM accounts')) {
      for (let k = 0; k <= Number(n); k++) assert.ok(seen.get(Number(id))?.has(k), `account ${id}: the change that set n=${k} is missing from the log`);
    }
  });
});

/** Every event in the service's embedded log (offset gaps left by compaction are skipped). */
function readLog(fixture: MysqlRedisFixture): Promise<ChangeEvent[]> {
  return readWholeLog(fixture.dataDir);
}
