import { strict as assert } from 'node:assert';
import { Connection } from 'mysql2/promise';
import { MysqlCatalog } from '../../connectors/mysql/catalog';
import { openConnection, parseMysqlUrl } from '../../connectors/mysql/connection';
import { ChunkReader } from '../../connectors/mysql/resync-reader';
import { ResyncTask } from '../../connectors/mysql/checkpoint';
import { MariadbServer, startMariadb, stopAll } from '../support/servers';
import { sql } from './mysql-fixture';

const ROW_BYTES = 200_000;
const ROWS = 30;

describe('MySQL resync chunks are bounded by bytes as well as rows', function () {
  this.timeout(90_000);
  let server: MariadbServer;
  let admin: Connection;
  const db = 'resync_chunks';

  before(async () => {
    server = await startMariadb();
    await sql(server, `CREATE DATABASE ${db}; CREATE TABLE ${db}.blobs (id INT PRIMARY KEY, body LONGTEXT NOT NULL);
      USE ${db}; INSERT INTO blobs SELECT seq, REPEAT(CHAR(97 + seq % 26), ${ROW_BYTES}) FROM seq_1_to_${ROWS}`);
  });
  after(async () => {
    await admin?.end().catch(() => undefined);
    await stopAll();
  });

  it('reads rows of 200 KB about 1 MiB at a time once it has seen them, and still every row once, in key order', async () => {
    const connection = parseMysqlUrl(`mysql://root@127.0.0.1:${server.port}/`);
    admin = await openConnection(connection);
    const catalog = new MysqlCatalog(admin, [`${db}.blobs`]);
    await catalog.load('source test');
    const reader = new ChunkReader({ connection, catalog, sourceName: 'test', chunkSize: 10 });
    const task: ResyncTask = { requestId: 'r1', table: `${db}.blobs`, rows: 0 };
    const sizes: number[] = [];
    const ids: number[] = [];
    try {
      for (;;) {
        const chunk = await reader.read(task);
        sizes.push(chunk.rows.length);
        for (const event of chunk.rows) {
          const after = event.after as { id: number; body: string };
          assert.equal(after.body.length, ROW_BYTES, `row ${after.id} read whole`);
          ids.push(after.id);
        }
        task.afterKey = chunk.lastKey ?? task.afterKey;
        if (chunk.complete) break;
      }
    } finally {
      reader.close();
    }
    assert.deepEqual(ids, Array.from({ length: ROWS }, (_, i) => i + 1));
    // The first chunk takes the configured 10 rows (nothing seen yet); then ~1 MiB / 200 KB rows.
    assert.equal(sizes[0], 10, `chunk sizes ${sizes}`);
    assert.ok(sizes.slice(1).every((n) => n <= 6) && sizes.slice(1, -1).every((n) => n >= 1), `chunk sizes ${sizes}`);
    // An explicit size (the verifier's) is taken as it is.
    const verify = new ChunkReader({ connection, catalog, sourceName: 'test', chunkSize: 10 });
    try {
      assert.equal((await verify.read({ requestId: 'v', table: `${db}.blobs`, rows: 0 }, 12)).rows.length, 12);
    } finally {
      verify.close();
    }
  });
});
