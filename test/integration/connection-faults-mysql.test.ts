import { strict as assert } from 'node:assert';
import { Connection } from 'mysql2/promise';
import { seededRandom } from '../support/seeded-random';
import { MariadbServer, RedisServer, startMariadb, startRedis, stopAll } from '../support/servers';
import { ServiceProcess } from '../support/service-process';
import { startTcpProxy, TcpProxy } from '../support/tcp-proxy';
import { waitFor } from '../support/wait';
import { assertNoCrash, metricValue, readyz, restarts, runLoad, sleep, WriteLoad } from './connection-faults-helpers';
import { connect, describeDifference, expectedRows, MysqlRedisFixture } from './mysql-fixture';

// Faults on the binlog connection of a MariaDB source, under a small write load,
// each ending with Redis compared to MariaDB row by row.
const ACCOUNTS = 5_000;
const SEED = Number(process.env.FAULT_SEED ?? (Date.now() % 1_000_000));
const SCHEMA = `CREATE TABLE accounts (id INT PRIMARY KEY, n INT NOT NULL, note VARCHAR(40));
  CREATE TABLE moves (account INT, seq INT, amount BIGINT NOT NULL, PRIMARY KEY (account, seq))`;
const DOCS = {
  accounts: { key: 'id', doc: `JSON_OBJECT('id', id, 'n', n, 'note', note)` },
  moves: { key: `CONCAT(account, ':', seq)`, doc: `JSON_OBJECT('account', account, 'seq', seq, 'amount', CAST(amount AS CHAR))` },
};

describe('Connection faults: MariaDB → log → Redis under a write load', function () {
  this.timeout(240_000);
  let mariadb: MariadbServer;
  let redis: RedisServer;
  let fixture: MysqlRedisFixture;
  let load: WriteLoad | null = null;
  let proxy: TcpProxy | null = null;
  let testNumber = 0;
  const random = seededRandom(SEED);

  before(async () => {
    console.log(`    connection-faults seed ${SEED} (FAULT_SEED=${SEED} repeats the random load)`);
    [mariadb, redis] = await Promise.all([startMariadb(), startRedis()]);
  });
  after(async () => stopAll());
  afterEach(async () => {
    await load?.stop();
    load = null;
    await fixture?.tearDown();
    await proxy?.close();
    proxy = null;
  });

  function mysqlLoad(db: string): WriteLoad {
    let connection: Connection | null = null;
    let seq = 0;
    return runLoad(
      async () => {
        if (!connection) {
          connection = await connect(mariadb);
          connection.on('error', () => undefined); // a restart ends it; the next query fails and reconnects
        }
        const id = 1 + Math.floor(random() * ACCOUNTS);
        if (random() < 0.6) await connection.query(`UPDATE \`${db}\`.accounts SET n = n + 1, note = ? WHERE id = ?`, [`moved ${seq}`, id]);
        else await connection.query(`INSERT INTO \`${db}\`.moves VALUES (?, ?, ?)`, [id, ++seq, Math.floor(random() * 1e12)]);
      },
      40,
      async () => {
        const dead = connection;
        connection = null;
        dead?.destroy();
      },
    );
  }

  /** Runs one fault once the service is ready; resolves with its metrics once Redis equals MariaDB. */
  async function faultCase(options: { viaProxy?: boolean; sourceExtra?: string; fault(): Promise<void> }): Promise<string> {
    fixture = new MysqlRedisFixture(mariadb, redis, `mfault${++testNumber}`, ['accounts', 'moves']);
    await fixture.setUp(SCHEMA, options.sourceExtra ?? ', livenessTimeoutMs: 3000');
    await fixture.sql(`INSERT INTO accounts SELECT seq, 0, 'seed' FROM seq_1_to_${ACCOUNTS}`);
    let url = mariadb.url;
    if (options.viaProxy) {
      proxy = await startTcpProxy({ port: mariadb.port });
      url = url.replace(`:${mariadb.port}`, `:${proxy.port}`);
    }
    const { configPath, httpPort, env } = fixture.service;
    fixture.service = new ServiceProcess(configPath, httpPort, { ...env, MYSQL_URL: url });
    load = mysqlLoad(fixture.db);
    await fixture.service.start();
    await sleep(1000);
    await options.fault();
    const faultEnded = Date.now();
    await waitFor(async () => (await readyz(fixture.service)).status === 200, {
      timeoutMs: 60_000,
      what: 'the service to be ready again after the fault',
      describe: async () => `${(await readyz(fixture.service)).body}\n${fixture.service.recentOutput()}`,
    });
    const readyAfterMs = Date.now() - faultEnded;
    await sleep(1500);
    const counts = await load.stop();
    load = null;
    assert.ok(counts.committed > 20, `the write load committed only ${counts.committed} transactions`);
    const difference = async () => describeDifference(await expectedRows(mariadb, fixture.db, DOCS), await fixture.actual());
    await waitFor(async () => (await difference()) === '', {
      timeoutMs: 60_000,
      what: 'Redis to equal MariaDB row by row',
      describe: async () => `${await difference()}\n${fixture.service.recentOutput()}`,
    });
    console.log(`      ready ${(readyAfterMs / 1000).toFixed(1)} s after the fault ended; ${counts.committed} transactions committed under load (${counts.failed} failed during the fault); rows equal`);
    assertNoCrash(fixture.service);
    const metrics = await fixture.service.metrics();
    assert.equal(metricValue(metrics, `cdc_source_up{source="${fixture.db}-mysql"}`), 1, 'cdc_source_up is 1 again');
    assert.equal(await fixture.service.stop(), 0, `the service stops cleanly:\n${fixture.service.recentOutput()}`);
    return metrics;
  }

  const source = () => `source ${fixture.db}-mysql`;

  it('reconnects when its binlog dump thread is killed (KILL)', async () => {
    const metrics = await faultCase({
      fault: async () => {
        const conn = await connect(mariadb);
        try {
          let ids: number[] = [];
          await waitFor(async () => {
            const [rows] = await conn.query(`SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'`);
            ids = (rows as Array<{ ID: number }>).map((r) => r.ID);
            return ids.length > 0;
          }, { timeoutMs: 20_000, what: 'the binlog dump thread to start', describe: () => fixture.service.recentOutput() });
          assert.equal(ids.length, 1, 'one binlog dump thread');
          await conn.query(`KILL ${ids[0]}`);
        } finally {
          await conn.end();
        }
      },
    });
    assert.ok(restarts(metrics, source()).total >= 1, metrics);
  });

  it('reconnects after a MariaDB restart mid-stream', async () => {
    const metrics = await faultCase({ fault: () => mariadb.restart() });
    assert.ok(restarts(metrics, source()).reasons.includes('connection_lost'), metrics);
  });

  it('takes a blackholed binlog connection for dead (liveness watchdog) and reconnects once the network is back', async () => {
    let seenDown = '';
    const metrics = await faultCase({
      viaProxy: true,
      sourceExtra: ', livenessTimeoutMs: 2000',
      fault: async () => {
        // Once the binlog streams: a blackhole while it connects is the connect timeout's case, not the watchdog's.
        await waitFor(() => fixture.service.output.some((l) => l.includes('streaming the binlog')), {
          timeoutMs: 30_000,
          what: 'the binlog stream to start',
          describe: () => fixture.service.recentOutput(),
        });
        proxy!.blackhole();
        await waitFor(async () => {
          const { status, body } = await readyz(fixture.service);
          if (status === 503) seenDown = body;
          return status === 503;
        }, { timeoutMs: 15_000, what: '/readyz to report the source down', describe: () => fixture.service.recentOutput() });
        await sleep(3000);
        proxy!.restore();
      },
    });
    assert.match(seenDown, new RegExp(`source ${fixture.db}-mysql: not streaming`), seenDown);
    const watchdog = fixture.service.output.find((l) => /binlog connection to 127\.0\.0\.1:\d+ received nothing .*\(livenessTimeoutMs 2000\)/.test(l));
    assert.ok(watchdog, `the watchdog says why it reconnects, naming the server:\n${fixture.service.recentOutput(60)}`);
    assert.ok(restarts(metrics, source()).reasons.includes('liveness_timeout'), metrics);
  });
});
