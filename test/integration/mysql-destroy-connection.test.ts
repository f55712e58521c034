import { strict as assert } from 'node:assert';
import { destroyConnection, openConnection, parseMysqlUrl } from '../../connectors/mysql/connection';
import { MariadbServer, startMariadb, stopAll } from '../support/servers';

// A MariaDB restart mid-snapshot hung the source for good in the fault suite:
// the attempt ended and destroyed the snapshot connection, and the chunk query
// in flight on it never settled (mysql2's destroy() notifies no pending command).
describe('MySQL connections ended by their attempt', function () {
  this.timeout(60_000);
  let mariadb: MariadbServer;
  before(async () => (mariadb = await startMariadb()));
  after(async () => stopAll());

  it('fail the query in flight at once, naming why, instead of leaving it pending', async () => {
    const connection = await openConnection(parseMysqlUrl(mariadb.url));
    const query = connection.query('SELECT SLEEP(20)');
    const startedAt = Date.now();
    setTimeout(() => destroyConnection(connection, 'the snapshot read stopped: its attempt ended'), 300);
    await assert.rejects(query, /the snapshot read stopped: its attempt ended/);
    assert.ok(Date.now() - startedAt < 5_000, `rejected after ${Date.now() - startedAt} ms`);
    await assert.rejects(connection.query('SELECT 1'), 'a destroyed connection takes no more queries');
  });
});
