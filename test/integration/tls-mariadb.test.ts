import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { MariadbServer, RedisServer, freePort, mariadbQuery, startMariadb, startRedis, stopAll } from '../support/servers';
import { ServiceProcess, writeConfig } from '../support/service-process';
import { makeCa, TestCa } from '../support/tls-ca';
import { waitFor } from '../support/wait';

/**
 * A MariaDB user that must connect with TLS and a client certificate
 * (REQUIRE X509): the snapshot (mysql2) and the binlog stream (zongji) both
 * connect with the source's ssl settings, from the config or from the URL.
 */
describe('TLS: MariaDB source (ssl config and URL ssl-* options, binlog connection included)', function () {
  this.timeout(120_000);
  let ca: TestCa;
  let otherCa: TestCa;
  let mariadb: MariadbServer;
  let redis: RedisServer;
  let cache: Redis;
  let client: { certFile: string; keyFile: string };
  const dirs: string[] = [];
  const services: ServiceProcess[] = [];

  before(async () => {
    ca = makeCa();
    otherCa = makeCa('another CA');
    client = ca.issue('client', { client: true, commonName: 'cdc' });
    [mariadb, redis] = await Promise.all([startMariadb({ tls: { ...ca.issue('server'), caFile: ca.caFile } }), startRedis()]);
    await mariadbQuery(mariadb.port, `CREATE USER cdc@'%' IDENTIFIED BY 'pw' REQUIRE X509; GRANT ALL ON *.* TO cdc@'%'`);
    cache = new Redis(redis.url);
  });
  after(async () => {
    await Promise.allSettled(services.map((s) => s.stop()));
    cache?.disconnect();
    dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
    await stopAll();
  });

  async function service(db: string, source: string): Promise<ServiceProcess> {
    const dir = mkdtempSync(join(tmpdir(), 'cdc-tls-mysql-'));
    dirs.push(dir);
    const port = await freePort();
    const config = writeConfig(join(dir, 'cdc.yaml'), `service: { name: ${db}, dataDir: ./var, http: { port: ${port} } }
log: { type: embedded, partitions: 2 }
sources:
  - { name: ${db}-maria, type: mysql, serverId: ${5400 + services.length}, tables: [${db}.items], heartbeatIntervalMs: 500, ${source} }
sinks:
  - { name: cache, type: redis, url: "${redis.url}", keyPrefix: "${db}:", tables: ["*"] }
`);
    const svc = new ServiceProcess(config, port);
    services.push(svc);
    return svc;
  }

  const rows = async (db: string) => (await cache.keys(`${db}:${db}.items:*`)).length;

  it('refuses this user without TLS (so the rows below came over TLS)', async () => {
    const { createConnection } = await import('mysql2/promise');
    await assert.rejects(createConnection({ host: '127.0.0.1', port: mariadb.port, user: 'cdc', password: 'pw' }), /Access denied/);
  });

  for (const [how, db, source] of [
    ['ssl: { ca, cert, key } in the source config', 'tls1', () => `url: "mysql://cdc:pw@127.0.0.1:${mariadb.port}/", ssl: { ca: "${ca.caFile}", cert: "${client.certFile}", key: "${client.keyFile}" }`],
    ['ssl-mode=VERIFY_IDENTITY&ssl-ca=...&ssl-cert=...&ssl-key=... in the URL', 'tls2', () => `url: "mysql://cdc:pw@127.0.0.1:${mariadb.port}/?ssl-mode=VERIFY_IDENTITY&ssl-ca=${ca.caFile}&ssl-cert=${client.certFile}&ssl-key=${client.keyFile}"`],
  ] as const) {
    it(`snapshot and binlog stream over TLS with a client certificate: ${how}`, async () => {
      await mariadbQuery(mariadb.port, `CREATE DATABASE ${db}; CREATE TABLE ${db}.items (id INT PRIMARY KEY, name VARCHAR(40)); INSERT INTO ${db}.items VALUES (1, 'one'), (2, 'two')`);
      const svc = await service(db, source());
      await svc.start();
      await waitFor(async () => (await rows(db)) === 2, { timeoutMs: 30_000, what: 'the snapshot rows', describe: () => svc.recentOutput() });
      await mariadbQuery(mariadb.port, `INSERT INTO ${db}.items VALUES (3, 'three'); UPDATE ${db}.items SET name = 'uno' WHERE id = 1; DELETE FROM ${db}.items WHERE id = 2`);
      await waitFor(async () => (await rows(db)) === 2 && JSON.parse((await cache.get(`${db}:${db}.items:1`)) ?? '{}').name === 'uno', {
        timeoutMs: 30_000, what: 'the streamed changes (binlog connection over TLS)', describe: () => svc.recentOutput(),
      });
      assert.deepEqual(JSON.parse((await cache.get(`${db}:${db}.items:3`))!), { id: 3, name: 'three' });
      await svc.stop();
    });
  }

  it('a server certificate from another CA: the error names the host and the CA file', async () => {
    await mariadbQuery(mariadb.port, `CREATE DATABASE tls3; CREATE TABLE tls3.items (id INT PRIMARY KEY)`);
    const svc = await service('tls3', `url: "mysql://cdc:pw@127.0.0.1:${mariadb.port}/", ssl: { ca: "${otherCa.caFile}", cert: "${client.certFile}", key: "${client.keyFile}" }`);
    await svc.start({ waitUntilReady: false });
    await waitFor(async () => /is not signed by the CA file/.test(svc.recentOutput(200)), { timeoutMs: 30_000, what: 'the TLS error', describe: () => svc.recentOutput() });
    assert.match(svc.recentOutput(200), new RegExp(`the TLS certificate of 127\\.0\\.0\\.1:${mariadb.port} is not signed by the CA file ${otherCa.caFile.replace(/[.]/g, '\\.')}`));
    await svc.stop();
  });
});
