// Elasticsearch ordering at production positions (issue 13.1): MariaDB binlog
// file numbers in the thousands and Postgres LSNs above 2^43, with a truncate
// (and, in es-large-transaction.test.ts, a 1.5M-change transaction).
import { strict as assert } from 'node:assert';
import { Client } from 'pg';
import { sql as mysql } from './mysql-fixture';
import { startEsServer, EsServer } from '../support/es-server';
import { resetWalAbove } from '../support/pg-reset-wal';
import { MariadbServer, PgServer, startMariadb, startPostgres, stopAll } from '../support/servers';
import { rowDifference, Rows, SinkE2e } from '../support/sink-e2e';
import { waitFor } from '../support/wait';

const TWO_POW_43 = 1n << 43n;

async function pgRows(url: string, query: string): Promise<Rows> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query(query);
    return new Map(rows.map((r) => [String(r.id), r]));
  } finally {
    await client.end();
  }
}

describe('Elasticsearch at real positions (external_gte on the commit position)', function () {
  this.timeout(240_000);
  let es: EsServer;
  after(async () => {
    await es?.stop();
    await stopAll();
  });
  before(async () => {
    es = await startEsServer();
  });

  it('MariaDB after RESET MASTER TO 5000: every change and a truncate reach Elasticsearch, nothing dead-lettered', async () => {
    const mariadb: MariadbServer = await startMariadb();
    await mysql(mariadb, 'RESET MASTER TO 5000');
    const [status] = await mysql(mariadb, 'SHOW MASTER STATUS');
    assert.match(String(status.File), /\.005000$/, 'the binlog runs in file .005000');
    await mysql(mariadb, `CREATE DATABASE shop; CREATE TABLE shop.items (id int PRIMARY KEY, v int NOT NULL, note varchar(40));
      INSERT INTO shop.items SELECT seq, seq, CONCAT('n', seq) FROM shop.seq_1_to_200`);
    const e2e = new SinkE2e({ name: 'esmaria', source: 'type: mysql, url: "${MYSQL_URL}", serverId: 5411, tables: [shop.items], heartbeatIntervalMs: 500', env: { MYSQL_URL: mariadb.url }, es });
    await e2e.setUp();
    try {
      await e2e.service.start();
      const expected = async () => {
        const rows = await mysql(mariadb, 'SELECT id, v, note FROM shop.items');
        return new Map(rows.map((r) => [String(r.id), r])) as Rows;
      };
      const equal = async () => rowDifference('elasticsearch', await expected(), e2e.esRows('shop.items'));
      await waitFor(async () => (await equal()) === '', { timeoutMs: 60_000, what: 'the snapshot in Elasticsearch', describe: equal });
      await mysql(mariadb, `UPDATE shop.items SET v = v + 1000 WHERE id <= 50; DELETE FROM shop.items WHERE id > 180;
        TRUNCATE shop.items; INSERT INTO shop.items VALUES (1, 1, 'after truncate'), (7, 7, 'seven');
        UPDATE shop.items SET v = 70 WHERE id = 7`);
      await waitFor(async () => (await equal()) === '', { timeoutMs: 60_000, what: 'changes and the truncate in Elasticsearch', describe: equal });
      assert.equal(e2e.esRows('shop.items').size, 2);
      assert.deepEqual(await e2e.deadLetters('search'), [], 'nothing dead-lettered');
    } finally {
      await e2e.tearDown();
      await mariadb.stop();
    }
  });

  it('Postgres with its WAL position above 2^43: snapshot, changes and a truncate reach Elasticsearch', async () => {
    const pg: PgServer = await startPostgres();
    await resetWalAbove(pg);
    const admin = new Client({ connectionString: pg.url });
    await admin.connect();
    const lsn = BigInt('0x' + (await admin.query(`SELECT lpad(to_hex((pg_current_wal_lsn() - '0/0')::bigint), 16, '0') AS h`)).rows[0].h);
    assert.ok(lsn > TWO_POW_43, `WAL position ${lsn} is above 2^43`);
    await admin.query(`CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL, note text);
      INSERT INTO items SELECT g, g, 'n' || g FROM generate_series(1, 200) g`);
    await admin.end();
    const e2e = new SinkE2e({ name: 'espg', source: 'type: postgres, url: "${PG_URL}", tables: [public.items]', env: { PG_URL: pg.url }, es });
    await e2e.setUp();
    try {
      await e2e.service.start();
      const equal = async () => rowDifference('elasticsearch', await pgRows(pg.url, 'SELECT id, v, note FROM items'), e2e.esRows('public.items'));
      await waitFor(async () => (await equal()) === '', { timeoutMs: 60_000, what: 'the snapshot in Elasticsearch', describe: equal });
      const client = new Client({ connectionString: pg.url });
      await client.connect();
      await client.query(`UPDATE items SET v = v + 1000 WHERE id <= 50; DELETE FROM items WHERE id > 180`);
      await client.query(`BEGIN; TRUNCATE items; INSERT INTO items VALUES (1, 1, 'after truncate, same transaction'); COMMIT`);
      await client.query(`INSERT INTO items VALUES (7, 7, 'seven'); UPDATE items SET v = 70 WHERE id = 7`);
      await client.end();
      await waitFor(async () => (await equal()) === '', { timeoutMs: 60_000, what: 'changes and the truncate in Elasticsearch', describe: equal });
      assert.equal(e2e.esRows('public.items').size, 2);
      assert.deepEqual(await e2e.deadLetters('search'), [], 'nothing dead-lettered');
    } finally {
      await e2e.tearDown();
      await pg.stop();
    }
  });
});
