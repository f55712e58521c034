import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { Client } from 'pg';
import { EsServer, startEsServer } from '../support/es-server';
import { MariadbServer, mariadbQuery, PgServer, startMariadb, startPostgres, startRedis, stopAll } from '../support/servers';
import { rowDifference, Rows, SinkE2e } from '../support/sink-e2e';
import { runCli } from '../support/service-process';
import { startTcpProxy } from '../support/tcp-proxy';
import { waitFor } from '../support/wait';
import { readyz } from './connection-faults-helpers';
import { sql } from './mysql-fixture';

// Issue 12.2: a MariaDB failover. The service reads a primary; a replica (GTID replication,
// log_slave_updates) is promoted mid-load and the service's URL changed to it. The saved
// file:offset belongs to the old primary: the source resumes from the GTID on the new one
// (under a new epoch, its binlog numbers being lower), or, when the failover lost transactions
// the service had read, re-snapshots (when_needed) or stops saying what to do.
const SCHEMA = `CREATE TABLE accounts (id INT PRIMARY KEY, n INT NOT NULL, note VARCHAR(40))`;
const REPLICATION_ARGS = ['--log-slave-updates', '--gtid-strict-mode=1'];
/** The service's metrics text lines that start with `name`. */
async function metricLines(e2e: SinkE2e, name: string): Promise<string> {
  const text = await (await fetch(`http://127.0.0.1:${e2e.service.httpPort}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith(name)).join('\n');
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A primary and its GTID replica; the primary's binlog numbered well above the replica's. */
async function replicatedPair(db: string): Promise<[MariadbServer, MariadbServer]> {
  const [primary, replica] = await Promise.all([
    startMariadb({ serverId: 1, args: REPLICATION_ARGS }),
    startMariadb({ serverId: 2, args: REPLICATION_ARGS }),
  ]);
  await mariadbQuery(primary.port, 'FLUSH BINARY LOGS; FLUSH BINARY LOGS; FLUSH BINARY LOGS');
  await mariadbQuery(replica.port, `CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${primary.port}, MASTER_USER='root', MASTER_USE_GTID=slave_pos; START SLAVE`);
  await sql(primary, `CREATE DATABASE ${db}; USE ${db}; ${SCHEMA}; INSERT INTO accounts (id, n, note) SELECT seq, 0, CONCAT('seed ', seq) FROM seq_1_to_500`);
  return [primary, replica];
}

/** Waits until the replica has applied everything it received, then makes it a primary. */
async function promote(replica: MariadbServer): Promise<void> {
  await waitFor(async () => {
    const [status] = await sql(replica, 'SHOW SLAVE STATUS');
    const [pos] = await sql(replica, 'SELECT @@GLOBAL.gtid_slave_pos AS pos');
    return status !== undefined && String(status.Gtid_IO_Pos) === String(pos.pos);
  }, { timeoutMs: 30_000, what: 'the replica to apply its relay log' });
  await sql(replica, 'STOP SLAVE; RESET SLAVE ALL');
}

/** Random inserts, updates and deletes, one per transaction, to whichever server is the primary now. */
class Load {
  target: MariadbServer;
  written = 0;
  failed = 0;
  private stopped = false;
  private running: Promise<void> | null = null;
  constructor(target: MariadbServer, private readonly db: string) {
    this.target = target;
  }
  start(): void {
    this.running = (async () => {
      for (let i = 0; !this.stopped; i++) {
        const id = 1 + Math.floor(Math.random() * 800);
        const statement = i % 5 === 0 ? `DELETE FROM accounts WHERE id = ${id}`
          : `INSERT INTO accounts VALUES (${id}, 1, 'w${i}') ON DUPLICATE KEY UPDATE n = n + 1, note = 'w${i}'`;
        try {
          await sql(this.target, `USE ${this.db}; ${statement}`);
          this.written++;
        } catch {
          this.failed++;
          await sleep(100);
        }
        await sleep(10);
      }
    })();
  }
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }
}

describe('source history: MariaDB failover to a promoted GTID replica, every sink', function () {
  this.timeout(300_000);
  let redisUrl: string;
  let pg: PgServer;
  let es: EsServer;

  before(async () => {
    const [redis, postgres, esServer] = await Promise.all([startRedis(), startPostgres(), startEsServer()]);
    [redisUrl, pg, es] = [redis.url, postgres, esServer];
  });
  after(async () => {
    await es?.stop();
    await stopAll();
  });

  /** The service reading `primary`, with Redis, Elasticsearch and a Postgres warehouse. */
  async function service(name: string, primary: MariadbServer, snapshotMode: string): Promise<SinkE2e> {
    const admin = new Client({ connectionString: pg.url });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`).finally(() => admin.end());
    const e2e = new SinkE2e({
      name, redisUrl, es, warehouseUrl: pg.url.replace(/\/postgres$/, `/${name}`), env: {},
      source: `type: mysql, url: "${primary.url}", serverId: 5410, tables: [${name}.accounts], heartbeatIntervalMs: 500, snapshot: { mode: ${snapshotMode} }`,
    });
    await e2e.setUp();
    return e2e;
  }

  /** The operator's move: the source's URL now names the new primary; the service restarted. */
  async function pointAt(e2e: SinkE2e, from: MariadbServer, to: MariadbServer): Promise<void> {
    assert.equal(await e2e.service.stop(), 0);
    const config = readFileSync(e2e.service.configPath, 'utf8');
    writeFileSync(e2e.service.configPath, config.replace(from.url, to.url));
  }

  const differences = async (e2e: SinkE2e, server: MariadbServer, db: string) => {
    const expected: Rows = new Map((await sql(server, `SELECT id, n, note FROM ${db}.accounts`)).map((row) => [String(row.id), row]));
    return [
      rowDifference('redis', expected, await e2e.redisRows(`${db}.accounts`)),
      rowDifference('elasticsearch', expected, e2e.esRows(`${db}.accounts`)),
      rowDifference('warehouse', expected, await e2e.warehouseRows(`${db}.accounts`, (r) => String(r.id))),
    ].filter(Boolean).join(' | ');
  };
  const converge = (e2e: SinkE2e, server: MariadbServer, db: string, what: string) =>
    waitFor(async () => (await differences(e2e, server, db)) === '', { timeoutMs: 90_000, what, describe: () => differences(e2e, server, db), intervalMs: 500 });

  it('switchover (SHUTDOWN WAIT FOR ALL SLAVES) mid-load: resumes from the GTID on the new primary under epoch 1, no re-snapshot, 0 differences', async () => {
    const db = 'switchover';
    const [primary, replica] = await replicatedPair(db);
    // 3000 one-row transactions first: the GTID search on the replica pages through more than 12,000 binlog events.
    await sql(primary, `USE ${db}; BEGIN NOT ATOMIC FOR i IN 1..3000 DO UPDATE accounts SET n = n + 1 WHERE id = 1 + i % 500; END FOR; END`);
    const e2e = await service(db, primary, 'initial');
    try {
      const load = new Load(primary, db);
      await e2e.service.start();
      load.start();
      await sleep(4000);
      // The primary goes away mid-load; the replica has everything the primary wrote.
      await mariadbQuery(primary.port, 'SHUTDOWN WAIT FOR ALL SLAVES').catch(() => undefined);
      await waitFor(async () => primary.pid === undefined, { timeoutMs: 30_000, what: 'the primary to shut down' });
      await promote(replica);
      load.target = replica; // writes continue on the new primary
      await pointAt(e2e, primary, replica);
      await e2e.service.start();
      await sleep(4000);
      await load.stop();
      assert.ok(load.written > 200, `the load wrote ${load.written} transactions`);
      await converge(e2e, replica, db, 'every sink to equal the new primary');
      const line = e2e.service.output.find((l) => /failover: the saved position/.test(l));
      assert.ok(line, e2e.service.recentOutput());
      assert.match(line!, /belongs to another server; the source now reads server 2 at 127\.0\.0\.1:\d+ and resumes at binlog\.0+1:\d+@0-\d+-\d+.*source epoch 1/);
      assert.ok(!e2e.service.output.some((l) => /snapshot started/.test(l) && e2e.service.output.indexOf(l) > e2e.service.output.indexOf(line!)), 'no re-snapshot after the failover');
      const status = runCli(['status', '-c', e2e.service.configPath], e2e.service.env);
      assert.match(status.stdout, /server=2;epoch=1;binlog\.0+1:\d+/, `cdc status shows the new server and epoch with the position:\n${status.stdout}`);
      assert.match(status.stdout, /source switchover-src: failover-resumed at \S+ \(epoch 1\): failover: the saved position/, status.stdout);
      assert.match(await metricLines(e2e, 'cdc_source_history_events_total'), /kind="failover-resumed"\} 1/);
      assert.match(await metricLines(e2e, 'cdc_source_epoch'), /source="switchover-src"\} 1/);
      // Later changes and a restart keep flowing under the new server and epoch.
      await sql(replica, `UPDATE ${db}.accounts SET n = n + 100 WHERE id < 50; DELETE FROM ${db}.accounts WHERE id BETWEEN 50 AND 60`);
      assert.equal(await e2e.service.stop(), 0);
      await sql(replica, `UPDATE ${db}.accounts SET note = 'while stopped' WHERE id < 10`);
      await e2e.service.start();
      await converge(e2e, replica, db, 'later changes after a restart');
      assert.equal(e2e.service.output.filter((l) => /failover: the saved position/.test(l)).length, 1, 'the restart on the same server is no failover');
    } finally {
      await e2e.tearDown();
    }
  });

  it('failover that lost transactions the service had read (replica lagging, primary killed): a clear error, then with when_needed a re-snapshot under epoch 1, 0 differences', async () => {
    const db = 'lossy';
    const [primary, replica] = await replicatedPair(db);
    const e2e = await service(db, primary, 'initial');
    try {
      const load = new Load(primary, db);
      await e2e.service.start();
      load.start();
      await sleep(3000);
      await sql(replica, 'STOP SLAVE IO_THREAD'); // the replica falls behind: what the service reads next never reaches it
      await sleep(3000);
      await primary.kill9();
      await promote(replica);
      load.target = replica;
      await pointAt(e2e, primary, replica);
      await e2e.service.start({ waitUntilReady: false });
      await waitFor(async () => e2e.service.output.some((l) => /cannot resume on server 2/.test(l)), { timeoutMs: 30_000, what: 'the error naming the failover', describe: () => e2e.service.recentOutput() });
      const line = e2e.service.output.find((l) => /cannot resume on server 2/.test(l))!;
      assert.match(line, /cannot resume on server 2 at 127\.0\.0\.1:\d+: the saved position binlog\.0+4:\d+@0-1-\d+ \(server 1\) belongs to server 1, and this server cannot continue after it: its binlog \(binlog\.0+1 to binlog\.0+1, GTID position 0-2-\d+\) does not hold the transaction with GTID 0-1-\d+: asynchronous replication lost it.*set snapshot\.mode: when_needed.*or point the source back at server 1/);
      const ready = await readyz(e2e.service);
      assert.equal(ready.status, 503);
      assert.match(ready.body, /lossy-src[\s\S]*cannot resume on server 2/);
      assert.equal(await e2e.service.stop(), 0);

      const config = readFileSync(e2e.service.configPath, 'utf8');
      writeFileSync(e2e.service.configPath, config.replace('mode: initial', 'mode: when_needed'));
      await e2e.service.start();
      await sleep(3000);
      await load.stop();
      await converge(e2e, replica, db, 'every sink to equal the new primary after the re-snapshot');
      assert.ok(e2e.service.output.some((l) => /failover: the saved position .* belongs to another server, and server 2 at .* cannot continue after it.*re-snapshotting under source epoch 1/.test(l)), e2e.service.recentOutput());
      const status = runCli(['status', '-c', e2e.service.configPath], e2e.service.env);
      assert.match(status.stdout, /server=2;epoch=1;binlog\.0+1:\d+/, status.stdout);
      assert.match(status.stdout, /source lossy-src: failover-resnapshot at \S+ \(epoch 1\): failover: the saved position/, status.stdout);
      assert.match(await metricLines(e2e, 'cdc_source_history_events_total'), /kind="failover-resnapshot"\} 1/);
    } finally {
      await e2e.tearDown();
    }
  });

  it('failover behind an unchanged address (a VIP moving to the replica), no restart: the source reconnects, notices the other server, resumes from the GTID', async () => {
    const db = 'vip';
    const [primary, replica] = await replicatedPair(db);
    const vip = await startTcpProxy({ port: primary.port });
    const address = `mysql://root@127.0.0.1:${vip.port}/`;
    const e2e = await service(db, { ...primary, url: address } as MariadbServer, 'initial');
    let moved: Awaited<ReturnType<typeof startTcpProxy>> | undefined;
    try {
      const load = new Load(primary, db);
      await e2e.service.start();
      load.start();
      await sleep(4000);
      await mariadbQuery(primary.port, 'SHUTDOWN WAIT FOR ALL SLAVES').catch(() => undefined);
      await waitFor(async () => primary.pid === undefined, { timeoutMs: 30_000, what: 'the primary to shut down' });
      await promote(replica);
      load.target = replica;
      // The address moves: same port, now the replica behind it.
      await vip.close();
      moved = await startTcpProxy({ port: replica.port, listenPort: vip.port });
      await sleep(3000);
      await load.stop();
      await converge(e2e, replica, db, 'every sink to equal the new primary, without a restart');
      assert.ok(e2e.service.output.some((l) => /failover: the saved position .*\(server 1\) belongs to another server; the source now reads server 2 at 127\.0\.0\.1:\d+ and resumes at binlog\.0+1:/.test(l)), e2e.service.recentOutput());
      assert.equal(e2e.service.output.filter((l) => /service started/.test(l)).length, 1, 'the service was not restarted');
    } finally {
      await e2e.tearDown();
      await moved?.close();
    }
  });
});
