import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { EsServer, startEsServer } from '../support/es-server';
import { MariadbServer, PgServer, RedisServer, startMariadb, startPostgres, startRedis, stopAll } from '../support/servers';
import { rowDifference, Rows, SinkE2e } from '../support/sink-e2e';
import { runCli } from '../support/service-process';
import { waitFor } from '../support/wait';
import { readyz } from './connection-faults-helpers';
import { describeDifference, expectedRows, MysqlRedisFixture, sql as mariadbSql } from './mysql-fixture';

// Issue 12.2: after RESET MASTER the binlog positions go backwards. The source notices, and with
// snapshot.mode when_needed re-snapshots under a new source epoch whose versions beat the stored ones.
const SCHEMA = `CREATE TABLE accounts (id INT PRIMARY KEY, n INT NOT NULL, note VARCHAR(40))`;
const DOCS = { accounts: { key: 'id', doc: `JSON_OBJECT('id', id, 'n', n, 'note', note)` } };

describe('source history: MariaDB RESET MASTER while the service is stopped', function () {
  this.timeout(180_000);
  let mariadb: MariadbServer;
  let redis: RedisServer;
  let fixture: MysqlRedisFixture;

  before(async () => {
    [mariadb, redis] = await Promise.all([startMariadb(), startRedis()]);
    fixture = new MysqlRedisFixture(mariadb, redis, 'resetmaster', ['accounts']);
    await fixture.setUp(SCHEMA);
  });
  after(async () => {
    await fixture?.tearDown();
    await stopAll();
  });

  const difference = async () => describeDifference(await expectedRows(mariadb, fixture.db, DOCS), await fixture.actual());
  const converge = (what: string) => waitFor(async () => (await difference()) === '', { timeoutMs: 60_000, what, describe: difference, intervalMs: 200 });

  it('is refused with a clear error by default, and with when_needed re-snapshotted under epoch 1; later changes keep flowing', async () => {
    await fixture.service.start();
    // Several binlog files, so the saved position is well above where a reset binlog starts.
    for (let file = 0; file < 4; file++) await fixture.sql(`FLUSH BINARY LOGS; INSERT INTO accounts VALUES (${100 + file}, 0, 'file ${file}')`);
    await fixture.sql(`INSERT INTO accounts (id, n, note) SELECT seq, 0, CONCAT('row ', seq) FROM seq_1_to_99`);
    await fixture.sql(`UPDATE accounts SET n = n + 1 WHERE id % 2 = 0`);
    await converge('Redis to equal MariaDB before the reset');
    assert.equal(await fixture.service.stop(), 0);

    await fixture.sql(`RESET MASTER`);
    await fixture.sql(`DELETE FROM accounts WHERE id % 3 = 0; UPDATE accounts SET n = n + 10, note = 'after reset' WHERE id % 3 = 1; INSERT INTO accounts VALUES (1000, 5, 'new after reset')`);

    // Default snapshot mode: the source refuses to stream another history and says what to do.
    await fixture.service.start({ waitUntilReady: false });
    await waitFor(async () => fixture.service.output.some((l) => /positions went backwards|another history/.test(l)), { timeoutMs: 20_000, what: 'the error naming the reset', describe: () => fixture.service.recentOutput() });
    const line = fixture.service.output.find((l) => /another history/.test(l))!;
    assert.match(line, /cannot resume at the saved position binlog\.0*5:\d+.*numbered below.*RESET MASTER.*set snapshot\.mode: when_needed/);
    const ready = await readyz(fixture.service);
    assert.equal(ready.status, 503);
    assert.match(ready.body, /resetmaster-mysql[\s\S]*RESET MASTER/);
    assert.equal(await fixture.service.stop(), 0);

    // when_needed: a re-snapshot (truncate first) under epoch 1 wins over everything stored.
    const config = readFileSync(fixture.service.configPath, 'utf8');
    writeFileSync(fixture.service.configPath, config.replace('heartbeatIntervalMs: 500', 'heartbeatIntervalMs: 500, snapshot: { mode: when_needed }'));
    await fixture.service.start();
    await converge('Redis to equal MariaDB after the re-snapshot');
    assert.ok(fixture.service.output.some((l) => /re-snapshotting under source epoch 1/.test(l)), fixture.service.recentOutput());
    await fixture.sql(`UPDATE accounts SET n = n + 100 WHERE id < 50; DELETE FROM accounts WHERE id = 1000; INSERT INTO accounts VALUES (2000, 1, 'later')`);
    await converge('later changes to flow under the new epoch');
    const status = runCli(['status', '-c', fixture.service.configPath], fixture.service.env);
    assert.match(status.stdout, /epoch=1;binlog\.0*1:\d+/, `cdc status shows the epoch with the position:\n${status.stdout}`);

    // A restart keeps the epoch (it is saved with the checkpoint) and streams on.
    assert.equal(await fixture.service.stop(), 0);
    await fixture.sql(`UPDATE accounts SET note = 'while stopped' WHERE id = 2`);
    await fixture.service.start();
    await converge('changes made while stopped, after the restart');
    assert.equal(await fixture.service.stop(), 0);
  });
});

describe('source history: RESET MASTER with when_needed, every sink (Redis, Elasticsearch, warehouse)', function () {
  this.timeout(180_000);
  let mariadb: MariadbServer;
  let redis: RedisServer;
  let pg: PgServer;
  let es: EsServer;
  let e2e: SinkE2e;
  const run = (text: string) => mariadbSql(mariadb, `USE everysink; ${text}`);

  before(async () => {
    [mariadb, redis, pg, es] = await Promise.all([startMariadb(), startRedis(), startPostgres(), startEsServer()]);
    await mariadbSql(mariadb, `CREATE DATABASE everysink; USE everysink; ${SCHEMA}`);
    e2e = new SinkE2e({
      name: 'everysink', redisUrl: redis.url, es, warehouseUrl: pg.url, env: { MYSQL_URL: mariadb.url },
      source: 'type: mysql, url: "${MYSQL_URL}", serverId: 5402, tables: [everysink.accounts], heartbeatIntervalMs: 500, snapshot: { mode: when_needed }',
    });
    await e2e.setUp();
  });
  after(async () => {
    await e2e?.tearDown();
    await es?.stop();
    await stopAll();
  });

  const differences = async () => {
    const expected: Rows = new Map((await run('SELECT id, n, note FROM accounts')).map((row) => [String(row.id), row]));
    return [
      rowDifference('redis', expected, await e2e.redisRows('everysink.accounts')),
      rowDifference('elasticsearch', expected, e2e.esRows('everysink.accounts')),
      rowDifference('warehouse', expected, await e2e.warehouseRows('everysink.accounts', (r) => String(r.id))),
    ].filter(Boolean).join(' | ');
  };
  const converge = (what: string) => waitFor(async () => (await differences()) === '', { timeoutMs: 60_000, what, describe: differences, intervalMs: 300 });

  it('every sink equals MariaDB after the re-snapshot under epoch 1, and later changes keep flowing', async () => {
    await e2e.service.start();
    for (let file = 0; file < 3; file++) await run(`FLUSH BINARY LOGS; INSERT INTO accounts VALUES (${100 + file}, 0, 'file ${file}')`);
    await run(`INSERT INTO accounts (id, n, note) SELECT seq, 0, CONCAT('row ', seq) FROM seq_1_to_99; UPDATE accounts SET n = n + 1 WHERE id % 2 = 0`);
    await converge('every sink before the reset');
    assert.equal(await e2e.service.stop(), 0);
    await run(`RESET MASTER`);
    await run(`DELETE FROM accounts WHERE id % 3 = 0; UPDATE accounts SET n = n + 10, note = 'after reset' WHERE id % 3 = 1; INSERT INTO accounts VALUES (1000, 5, 'new')`);
    await e2e.service.start();
    await converge('every sink after the re-snapshot');
    await run(`UPDATE accounts SET n = n + 100 WHERE id < 50; DELETE FROM accounts WHERE id = 1000`);
    await converge('every sink after later changes');
    assert.equal(await e2e.service.stop(), 0);
  });
});
