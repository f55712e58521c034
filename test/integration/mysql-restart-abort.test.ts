import { strict as assert } from 'node:assert';
import { createLogger } from '../../core/runtime/logger';
import { mysqlSourceConfig } from '../../connectors/mysql/config';
import { MysqlSource } from '../../connectors/mysql/mysql-source';
import { MariadbServer, startMariadb, stopAll } from '../support/servers';
import { sql } from './mysql-fixture';
import { startTcpProxy, TcpProxy } from '../support/tcp-proxy';

// Issue 11: a MariaDB restart (SIGTERM, then start) at any moment of a
// source's attempt ends the attempt promptly: no await of it waits for the
// attempt's safety net (15 s, then "... abandoned ...").
describe('MySQL source: a MariaDB restart at any moment ends the attempt without abandoning an await', function () {
  this.timeout(600_000);
  let server: MariadbServer;
  let proxy: TcpProxy;

  before(async () => {
    server = await startMariadb();
    proxy = await startTcpProxy({ port: server.port });
    await sql(server, `CREATE DATABASE rabort; CREATE TABLE rabort.items (id INT PRIMARY KEY, n INT NOT NULL, note VARCHAR(200));
      USE rabort; INSERT INTO rabort.items SELECT seq, 0, REPEAT('x', 150) FROM seq_1_to_30000`);
  });
  after(async () => {
    await proxy.close();
    await stopAll();
  });

  for (const delayMs of [0, 100, 200, 300, 500, 700, 1000, 1500, 2000, 3000]) {
    it(`restart ${delayMs} ms into the attempt`, async () => {
      const lines: string[] = [];
      const logger = createLogger('test', (line: string) => lines.push(line));
      const config = mysqlSourceConfig.parse({ name: 'r', type: 'mysql', url: server.url.replace(`:${server.port}`, `:${proxy.port}`), serverId: 4400 + delayMs, tables: ['rabort.items'], heartbeatIntervalMs: 500 });
      const source = new MysqlSource(config, logger);
      const controller = new AbortController();
      let ended = 0;
      const done = source
        .stream({ from: null, signal: controller.signal, onStreaming: () => undefined, progress: { snapshotRows: () => undefined, backlogBytes: () => undefined }, emit: () => new Promise((r) => setTimeout(r, 100)) })
        .then(() => null, (error: Error) => error)
        .finally(() => (ended = Date.now()));
      await new Promise((r) => setTimeout(r, delayMs));
      const restartAt = Date.now();
      const restarting = server.restart();
      const error = await Promise.race([done, new Promise((r) => setTimeout(() => r('timeout'), 30_000))]);
      await restarting;
      controller.abort();
      await done;
      await source.close();
      console.log(`      ended ${ended ? ended - restartAt : 'never'} ms after the restart began: ${error === 'timeout' ? 'timeout' : (error as Error | null)?.message?.slice(0, 160)}`);
      assert.deepEqual(lines.filter((l) => /abandon/.test(l)), []);
      assert.notEqual(error, 'timeout');
    });
  }
});
