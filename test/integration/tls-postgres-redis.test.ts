import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { Client } from 'pg';
import { PgServer, RedisServer, freePort, startPostgres, startRedis, stopAll } from '../support/servers';
import { ServiceProcess, writeConfig } from '../support/service-process';
import { makeCa, TestCa } from '../support/tls-ca';
import { waitFor } from '../support/wait';

/**
 * Postgres and Redis that accept only TLS clients with a certificate of a CA
 * made here: the service captures over verify-full TLS and writes over rediss://,
 * and a certificate from another CA is refused with an error naming the host and the CA file.
 */
describe('TLS: Postgres (verify-full, client certificate) → service → Redis (rediss://, client certificate)', function () {
  this.timeout(120_000);
  let ca: TestCa;
  let otherCa: TestCa;
  let pg: PgServer;
  let redis: RedisServer;
  let client: { certFile: string; keyFile: string };
  const dirs: string[] = [];
  const services: ServiceProcess[] = [];

  before(async () => {
    ca = makeCa();
    otherCa = makeCa('another CA');
    const server = ca.issue('server');
    client = ca.issue('client', { client: true, commonName: 'postgres' });
    [pg, redis] = await Promise.all([
      startPostgres({ tls: { ...server, caFile: ca.caFile, clientCerts: true } }),
      startRedis({ tls: { ...server, caFile: ca.caFile, clientCerts: true } }),
    ]);
  });
  after(async () => {
    await Promise.allSettled(services.map((s) => s.stop()));
    dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
    await stopAll();
  });

  const pgUrl = (db: string, caFile = ca.caFile) =>
    `postgres://postgres@127.0.0.1:${pg.port}/${db}?sslmode=verify-full&sslrootcert=${caFile}&sslcert=${client.certFile}&sslkey=${client.keyFile}`;

  async function sql(db: string, text: string): Promise<void> {
    const c = new Client({ connectionString: pgUrl(db) });
    await c.connect();
    try {
      await c.query(text);
    } finally {
      await c.end();
    }
  }

  async function service(name: string, sourceUrl: string, redisCa = ca.caFile): Promise<ServiceProcess> {
    const dir = mkdtempSync(join(tmpdir(), 'cdc-tls-'));
    dirs.push(dir);
    const port = await freePort();
    const config = writeConfig(join(dir, 'cdc.yaml'), `service: { name: ${name}, dataDir: ./var, http: { port: ${port} } }
log: { type: embedded, partitions: 2 }
sources:
  - { name: ${name}-pg, type: postgres, url: "\${PG_URL}", tables: [public.items] }
sinks:
  - { name: cache, type: redis, url: "rediss://127.0.0.1:${redis.tlsPort}", keyPrefix: "${name}:", tables: ["*"],
      tls: { ca: "${redisCa}", cert: "${client.certFile}", key: "${client.keyFile}" } }
`);
    const svc = new ServiceProcess(config, port, { PG_URL: sourceUrl });
    services.push(svc);
    return svc;
  }

  it('plain text is refused by both servers: TLS is really in use', async () => {
    const plain = new Client({ host: '127.0.0.1', port: pg.port, user: 'postgres', database: 'postgres' });
    await assert.rejects(plain.connect(), /no pg_hba\.conf entry.*no encryption/);
    const plainRedis = new Redis(redis.tlsPort!, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    plainRedis.on('error', () => undefined);
    await assert.rejects(plainRedis.connect().then(() => plainRedis.ping()));
    plainRedis.disconnect();
  });

  it('captures and writes every change over TLS with client certificates', async () => {
    await sql('postgres', 'CREATE DATABASE shop1');
    await sql('shop1', 'CREATE TABLE items (id int PRIMARY KEY, name text)');
    await sql('shop1', `INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 50) g`);
    const svc = await service('shop1', pgUrl('shop1'));
    await svc.start();
    await sql('shop1', `UPDATE items SET name = 'changed' WHERE id <= 10; DELETE FROM items WHERE id > 40; INSERT INTO items VALUES (51, 'new')`);

    const reader = new Redis(`rediss://127.0.0.1:${redis.tlsPort}`, {
      tls: { ca: [readFileSync(ca.caFile)], cert: readFileSync(client.certFile), key: readFileSync(client.keyFile) },
    });
    try {
      const rows = async () => {
        const keys = (await reader.keys('shop1:public.items:*')).sort();
        return new Map(keys.map((k, i) => [k, i]));
      };
      await waitFor(async () => (await rows()).size === 41 && (await reader.get('shop1:public.items:51')) !== null && JSON.parse((await reader.get('shop1:public.items:1'))!).name === 'changed', {
        timeoutMs: 30_000, what: '41 rows in Redis over TLS', describe: async () => `${(await rows()).size} rows; service:\n${svc.recentOutput()}`,
      });
      assert.deepEqual(JSON.parse((await reader.get('shop1:public.items:11'))!), { id: 11, name: 'item 11' });
      assert.equal(await reader.get('shop1:public.items:45'), null);
    } finally {
      reader.disconnect();
    }
    await svc.stop();
  });

  it('a Postgres certificate from another CA: the source stops with the host and the CA file named', async () => {
    await sql('postgres', 'CREATE DATABASE shop2');
    await sql('shop2', 'CREATE TABLE items (id int PRIMARY KEY, name text)');
    const svc = await service('shop2', pgUrl('shop2', otherCa.caFile));
    await svc.start({ waitUntilReady: false });
    await waitFor(async () => /not signed by the CA file/.test(svc.recentOutput(200)), { timeoutMs: 30_000, what: 'the TLS error in the output', describe: () => svc.recentOutput() });
    const output = svc.recentOutput(200);
    assert.match(output, new RegExp(`source shop2-pg \\(postgres\\): the TLS certificate of 127\\.0\\.0\\.1:${pg.port} is not signed by the CA file ${otherCa.caFile.replace(/[.]/g, '\\.')}`));
    assert.match(output, /Set sslrootcert in the URL to the CA that issued the server's certificate/);
    await svc.stop();
  });

  it('a Redis certificate from another CA: the sink names the host and the CA file', async () => {
    await sql('postgres', 'CREATE DATABASE shop3');
    await sql('shop3', 'CREATE TABLE items (id int PRIMARY KEY, name text)');
    const svc = await service('shop3', pgUrl('shop3'), otherCa.caFile);
    await svc.start({ waitUntilReady: false });
    await waitFor(async () => /redis sink cache: the TLS certificate/.test(svc.recentOutput(200)), { timeoutMs: 30_000, what: 'the Redis TLS error in the output', describe: () => svc.recentOutput() });
    assert.match(svc.recentOutput(200), new RegExp(`redis sink cache: the TLS certificate of 127\\.0\\.0\\.1:${redis.tlsPort} is not signed by the CA file ${otherCa.caFile.replace(/[.]/g, '\\.')}`));
    await svc.stop();
  });
});
