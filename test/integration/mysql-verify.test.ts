import { strict as assert } from 'node:assert';
import { MariadbServer, RedisServer, startMariadb, startRedis, stopAll } from '../support/servers';
import { runCli } from '../support/service-process';
import { waitFor } from '../support/wait';
import { describeDifference, expectedRows, MysqlRedisFixture } from './mysql-fixture';

const SCHEMA = `CREATE TABLE accounts (id INT PRIMARY KEY, owner VARCHAR(40) NOT NULL, balance DECIMAL(12,2) NOT NULL, opened DATETIME(6) NOT NULL);
  INSERT INTO accounts SELECT seq, CONCAT('owner ''', seq), seq * 1.25, '2024-02-29 12:34:56.123456' FROM seq_1_to_1500`;
const DOCS = { accounts: { key: 'id', doc: `JSON_OBJECT('id', id, 'owner', owner, 'balance', CAST(balance AS CHAR), 'opened', DATE_FORMAT(opened, '%Y-%m-%dT%H:%i:%s.%f'))` } };

describe('cdc verify (MariaDB source vs Redis sink)', function () {
  this.timeout(120_000);
  let mariadb: MariadbServer;
  let redis: RedisServer;
  let fixture: MysqlRedisFixture;

  before(async () => {
    [mariadb, redis] = await Promise.all([startMariadb(), startRedis()]);
    fixture = new MysqlRedisFixture(mariadb, redis, 'mverify', ['accounts']);
    await fixture.setUp(SCHEMA);
    await fixture.service.start();
    await converge('the bootstrap snapshot');
  });
  after(async () => {
    await fixture?.tearDown();
    await stopAll();
  });

  const difference = async () => describeDifference(await expectedRows(mariadb, fixture.db, DOCS), await fixture.actual());
  const converge = (what: string) => waitFor(async () => (await difference()) === '', { timeoutMs: 60_000, intervalMs: 200, what, describe: difference });
  const verify = (...args: string[]) => runCli(['verify', '-c', fixture.service.configPath, ...args], fixture.service.env);

  it('reports no differences when the sink equals the source (values decoded as the source emits them)', () => {
    const result = verify();
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.match(result.stdout, /table mverify\.accounts: 1500 source rows compared, no differences/);
  });

  it('finds rows deleted and changed behind the pipeline\'s back, and --repair resyncs exactly those keys', async () => {
    const p = `${fixture.prefix}${fixture.db}.accounts`;
    await fixture.redis.del(`${p}:7`, `${p}:1234`);
    await fixture.redis.set(`${p}:42`, JSON.stringify({ id: 42, owner: 'stale', balance: '0.00', opened: '2000-01-01T00:00:00.000000' }));
    const found = verify();
    assert.equal(found.code, 2, found.stderr + found.stdout);
    const lines = found.stdout.split('\n').filter((l) => /^\s+(missing|extra|different) /.test(l)).map((l) => l.trim()).sort();
    assert.deepEqual(lines, ['different mverify.accounts:42', 'missing mverify.accounts:1234', 'missing mverify.accounts:7']);

    const repaired = verify('--repair');
    assert.equal(repaired.code, 2, repaired.stderr + repaired.stdout);
    await converge('the repaired sink');
    assert.equal(verify().code, 0);
  });
});
