import { strict as assert } from 'node:assert';
import { MariadbServer, RedisServer, startMariadb, startRedis, stopAll } from '../support/servers';
import { ServiceProcess } from '../support/service-process';
import { HeldConnection, MysqlHangProxy, startMysqlHangProxy } from '../support/mysql-hang-proxy';
import { waitFor } from '../support/wait';
import { assertNoCrash } from './connection-faults-helpers';
import { describeDifference, expectedRows, MysqlRedisFixture } from './mysql-fixture';

// Issue 11: every await of a MySQL source attempt ends when the attempt ends.
// Here the binlog connection stops answering while zongji starts it (after
// the handshake, at the first statement the decoder sends on it): the start
// must end with the attempt (the liveness watchdog, a lost control
// connection, a service stop) instead of waiting for the attempt's safety
// net, which abandons such an await 15 s late with an error line.
const SCHEMA = 'CREATE TABLE items (id INT PRIMARY KEY, n INT NOT NULL, note VARCHAR(40))';
const DOCS = { items: { key: 'id', doc: `JSON_OBJECT('id', id, 'n', n, 'note', note)` } };
/** The first statement the decoder queues on zongji's binlog connection. */
const BINLOG_START = /@master_heartbeat_period/;
/** The control connection's first query (startup-checks.ts serverInfo). */
const CONTROL = /CURRENT_USER\(\) AS account/;

describe('MySQL source: a binlog connection that hangs while zongji starts ends with its attempt', function () {
  this.timeout(180_000);
  let mariadb: MariadbServer;
  let redis: RedisServer;
  let fixture: MysqlRedisFixture | null = null;
  let proxy: MysqlHangProxy | null = null;
  let testNumber = 0;

  before(async () => {
    [mariadb, redis] = await Promise.all([startMariadb(), startRedis()]);
  });
  after(async () => stopAll());
  afterEach(async () => {
    await fixture?.tearDown();
    fixture = null;
    await proxy?.close();
    proxy = null;
  });

  /** The service through the hang proxy, its binlog connection held at the first start; resolves once it is held. */
  async function startHeld(sourceExtra: string): Promise<{ fixture: MysqlRedisFixture; held: HeldConnection; heldAt: number }> {
    const f = (fixture = new MysqlRedisFixture(mariadb, redis, `mhang${++testNumber}`, ['items']));
    await f.setUp(SCHEMA, sourceExtra);
    await f.sql(`INSERT INTO items SELECT seq, 0, 'seed' FROM seq_1_to_2000`);
    proxy = await startMysqlHangProxy({ port: mariadb.port });
    const held = proxy.holdNext(BINLOG_START);
    const { configPath, httpPort, env } = f.service;
    f.service = new ServiceProcess(configPath, httpPort, { ...env, MYSQL_URL: mariadb.url.replace(`:${mariadb.port}`, `:${proxy.port}`) });
    await f.service.start({ waitUntilReady: false });
    await waitFor(() => Promise.race([held.held.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 200))]), {
      timeoutMs: 60_000,
      what: 'the binlog connection to be held at the start of zongji',
      describe: () => f.service.recentOutput(),
    });
    return { fixture: f, held, heldAt: Date.now() };
  }

  /** Milliseconds from `since` until `promise` settles, or a failure naming `what` after `timeoutMs`. */
  async function within(promise: Promise<unknown>, since: number, timeoutMs: number, what: string, describe: () => string): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${timeoutMs} ms\n${describe()}`)), timeoutMs)));
    try {
      await Promise.race([promise, late]);
      return Date.now() - since;
    } finally {
      clearTimeout(timer);
    }
  }

  const streamingLines = (f: MysqlRedisFixture) => f.service.output.filter((l) => l.includes('streaming the binlog')).length;
  const abandoned = (f: MysqlRedisFixture) => f.service.output.filter((l) => /abandon/i.test(l));

  /** Writes while the binlog is held, then: the stream again, Redis equal to MariaDB, nothing abandoned, a clean stop. */
  async function assertRecovered(f: MysqlRedisFixture, heldAt: number, boundMs: number): Promise<number> {
    await f.sql(`UPDATE items SET n = n + 1, note = 'during the hang' WHERE id <= 50; INSERT INTO items VALUES (5001, 1, 'during the hang')`);
    const streamingAfterMs = await within(
      waitFor(() => streamingLines(f) > 0, { timeoutMs: boundMs + 1000, what: 'the binlog to stream' }),
      heldAt,
      boundMs,
      'the source to reconnect and stream the binlog',
      () => f.service.recentOutput(40),
    );
    await f.sql(`DELETE FROM items WHERE id BETWEEN 100 AND 120; UPDATE items SET note = 'after' WHERE id = 5001`);
    const difference = async () => describeDifference(await expectedRows(mariadb, f.db, DOCS), await f.actual());
    await waitFor(async () => (await difference()) === '', { timeoutMs: 30_000, what: 'Redis to equal MariaDB row by row', describe: async () => `${await difference()}\n${f.service.recentOutput()}` });
    assert.deepEqual(abandoned(f), [], 'no await of the ended attempt had to be abandoned');
    assertNoCrash(f.service);
    assert.equal(await f.service.stop(), 0, `the service stops cleanly:\n${f.service.recentOutput()}`);
    return streamingAfterMs;
  }

  it('the liveness watchdog ends a start the server never answers; the source reconnects and loses nothing', async () => {
    const { fixture: f, held, heldAt } = await startHeld(', livenessTimeoutMs: 2000');
    // Before issue 11's fix the watchdog's failure went unread until the start resolved: the source hung for good.
    const closedAfterMs = await within(held.closed, heldAt, 8000, 'the source to give up the held binlog connection', () => f.service.recentOutput(40));
    const said = () => f.service.output.some((l) => /binlog connection to 127\.0\.0\.1:\d+ did not start streaming within \d+ s .*livenessTimeoutMs 2000/.test(l));
    // The line comes once the attempt has settled (after the decoder's stop closed the connection).
    await waitFor(said, { timeoutMs: 5000, what: 'the watchdog to say why it reconnects', describe: () => f.service.recentOutput(40) });
    const streamingAfterMs = await assertRecovered(f, heldAt, 15_000);
    console.log(`      held binlog connection closed ${(closedAfterMs / 1000).toFixed(1)} s after the hang, streaming again after ${(streamingAfterMs / 1000).toFixed(1)} s; rows equal`);
  });

  it('a control connection lost during the hung start ends the start with the attempt (watchdog off); nothing is abandoned', async () => {
    const { fixture: f, held, heldAt } = await startHeld(', livenessTimeoutMs: 0');
    assert.equal(proxy!.reset(CONTROL), 1, 'one control connection to drop');
    // Before the fix the attempt ended but its start did not: 15 s later the safety net abandoned it ("... abandoned ...").
    const closedAfterMs = await within(held.closed, heldAt, 5000, 'the ended attempt to close its held binlog connection', () => f.service.recentOutput(40));
    const streamingAfterMs = await assertRecovered(f, heldAt, 10_000);
    assert.ok(f.service.output.some((l) => l.includes('control connection lost')), f.service.recentOutput(40));
    console.log(`      held binlog connection closed ${(closedAfterMs / 1000).toFixed(1)} s after the control connection was dropped, streaming again after ${(streamingAfterMs / 1000).toFixed(1)} s; rows equal`);
  });

  it('a service stop during the hung start exits at once, abandoning nothing', async () => {
    const { fixture: f, held } = await startHeld(', livenessTimeoutMs: 0');
    const stoppedAt = Date.now();
    const code = await f.service.stop();
    const exitMs = Date.now() - stoppedAt;
    assert.equal(code, 0, f.service.recentOutput(40));
    assert.ok(exitMs < 6000, `the service took ${exitMs} ms to stop (before the fix: the 15 s grace, then an abandoned await):\n${f.service.recentOutput(40)}`);
    assert.deepEqual(abandoned(f), [], 'no await of the ended attempt had to be abandoned');
    await within(held.closed, stoppedAt, 1000, 'the held binlog connection to be closed', () => f.service.recentOutput(40));
    console.log(`      stopped in ${(exitMs / 1000).toFixed(1)} s`);
  });
});
