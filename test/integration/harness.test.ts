// Proves the throwaway-server harness: each server starts on a private port, answers a
// real query, survives kill -9 / restart where that matters, and leaves nothing behind.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { Client } from 'pg';
import { pidAlive } from '../support/proc';
import { packageRoot } from '../support/kafka';
import { mariadbQuery, redisRaw, startKafkaMock, startMariadb, startPostgres, startRedis, stopAll } from '../support/servers';

const SYSTEM_PORTS = [5432, 3306, 6379];

async function pgQuery(url: string, sql: string): Promise<Record<string, unknown>[]> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}

function tcpConnect(hostPort: string): Promise<void> {
  const [host, port] = hostPort.split(':');
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(port), host, () => { s.destroy(); resolve(); });
    s.on('error', reject);
  });
}

function assertGone(pid: number | undefined, dir: string): void {
  assert.ok(pid, 'server had a PID while running');
  assert.equal(pidAlive(pid), false, `PID ${pid} still alive after stop()`);
  assert.equal(fs.existsSync(dir), false, `temp dir ${dir} still exists after stop()`);
}

describe('throwaway-server harness', function () {
  this.timeout(120_000);
  after(() => stopAll());

  it('postgres: logical WAL, pgoutput slot, kill -9 recovery, restart, clean stop', async () => {
    const pg = await startPostgres({ settings: { max_connections: '50' } });
    assert.ok(!SYSTEM_PORTS.includes(pg.port));
    assert.equal(pg.url, `postgres://postgres@127.0.0.1:${pg.port}/postgres`);
    assert.deepEqual(await pgQuery(pg.url, 'SHOW wal_level'), [{ wal_level: 'logical' }]);
    assert.deepEqual(await pgQuery(pg.url, 'SHOW max_connections'), [{ max_connections: '50' }]);
    await pgQuery(pg.url, "SELECT pg_create_logical_replication_slot('harness_slot', 'pgoutput')");
    const slots = await pgQuery(pg.url, "SELECT slot_name, plugin, slot_type FROM pg_replication_slots");
    assert.deepEqual(slots, [{ slot_name: 'harness_slot', plugin: 'pgoutput', slot_type: 'logical' }]);
    await pgQuery(pg.url, 'CREATE TABLE t (id int primary key); INSERT INTO t VALUES (1)');

    const killed = pg.pid;
    await pg.kill9();
    assert.equal(pidAlive(killed!), false);
    await pg.start(); // crash recovery: committed rows and the slot survive
    assert.deepEqual(await pgQuery(pg.url, 'SELECT id FROM t'), [{ id: 1 }]);
    assert.equal((await pgQuery(pg.url, "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'harness_slot'")).length, 1);

    await pg.restart();
    assert.deepEqual(await pgQuery(pg.url, 'SELECT id FROM t'), [{ id: 1 }]);
    const pid = pg.pid;
    await pg.stop();
    assertGone(pid, pg.dir);
  });

  it('mariadb: ROW binlog, kill -9 recovery, clean stop', async () => {
    const my = await startMariadb();
    assert.ok(!SYSTEM_PORTS.includes(my.port));
    assert.equal(my.url, `mysql://root@127.0.0.1:${my.port}/`);
    assert.equal((await mariadbQuery(my.port, "SHOW VARIABLES LIKE 'binlog_format'")).trim(), 'binlog_format\tROW');
    assert.equal((await mariadbQuery(my.port, "SHOW VARIABLES LIKE 'binlog_row_image'")).trim(), 'binlog_row_image\tFULL');
    await mariadbQuery(my.port, 'CREATE DATABASE h; CREATE TABLE h.t (id int primary key) ENGINE=InnoDB; INSERT INTO h.t VALUES (7)');
    await my.kill9();
    await my.start();
    assert.equal((await mariadbQuery(my.port, 'SELECT id FROM h.t')).trim(), '7');
    const pid = my.pid;
    await my.stop();
    assertGone(pid, my.dir);
  });

  it('redis: SET/GET over raw TCP, clean stop', async () => {
    const r = await startRedis();
    assert.ok(!SYSTEM_PORTS.includes(r.port));
    assert.equal(r.url, `redis://127.0.0.1:${r.port}`);
    assert.match(await redisRaw(r.port, 'SET harness yes\r\n', /\r\n/), /^\+OK/);
    assert.match(await redisRaw(r.port, 'GET harness\r\n', /yes\r\n/), /^\$3\r\nyes\r\n$/);
    const pid = r.pid;
    await r.stop();
    assertGone(pid, r.dir);
  });

  it('kafka mock: 127.0.0.1 bootstrap servers accept TCP, clean stop', async () => {
    const k = await startKafkaMock({ brokers: 3, topics: [{ name: 'harness', partitions: 4 }] });
    assert.equal(k.brokers.length, 3);
    for (const b of k.brokers) {
      assert.match(b, /^127\.0\.0\.1:\d+$/);
      await tcpConnect(b);
    }
    const pid = k.pid;
    await k.stop();
    assertGone(pid, k.dir);
  });

  it('scripts/throwaway-servers.sh prints exports and READY, stops cleanly on SIGTERM', async () => {
    const script = path.join(packageRoot(), 'scripts', 'throwaway-servers.sh');
    const child = spawn('bash', [script, 'redis', 'kafka:orders:2'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d) => { out += d; if (/^READY$/m.test(out)) resolve(); });
      child.on('exit', (code) => reject(new Error(`throwaway-servers.sh exited ${code} before READY:\n${out}`)));
    });
    const redisUrl = /^export REDIS_URL='(.+)'$/m.exec(out)?.[1];
    const brokers = /^export KAFKA_BROKERS='(.+)'$/m.exec(out)?.[1];
    assert.ok(redisUrl && brokers, `missing exports in:\n${out}`);
    assert.match(await redisRaw(Number(new URL(redisUrl).port), 'PING\r\n', /\r\n/), /^\+PONG/);
    await tcpConnect(brokers.split(',')[0]);

    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    await assert.rejects(redisRaw(Number(new URL(redisUrl).port), 'PING\r\n', /\r\n/, 500));
  });
});
