import { strict as assert } from 'node:assert';
import { Connection } from 'mysql2/promise';
import { MariadbServer, RedisServer, startMariadb, startRedis, stopAll } from '../support/servers';
import { runCli } from '../support/service-process';
import { waitFor } from '../support/wait';
import { connect, describeDifference, expectedRows, MysqlRedisFixture } from './mysql-fixture';

const ROWS = 2000;
const SCHEMA = `CREATE TABLE accounts (id INT PRIMARY KEY, owner VARCHAR(40) NOT NULL, balance INT NOT NULL);
  INSERT INTO accounts SELECT seq, CONCAT('owner ', seq), seq FROM seq_1_to_${ROWS};
  CREATE TABLE scratch (id INT PRIMARY KEY, v INT)`;
const DOCS = { accounts: { key: 'id', doc: `JSON_OBJECT('id', id, 'owner', owner, 'balance', balance)` } };

describe('cdc resync (MariaDB, DBLog watermarks through a watermark table)', function () {
  this.timeout(120_000);
  let mariadb: MariadbServer;
  let redis: RedisServer;
  let fixture: MysqlRedisFixture;
  let source: string;

  before(async () => {
    [mariadb, redis] = await Promise.all([startMariadb(), startRedis()]);
    // `resync.*` also covers the watermark table (default: resync.tidewater_watermarks): it must stay out of the sink.
    fixture = new MysqlRedisFixture(mariadb, redis, 'resync', ['*']);
    source = `${fixture.db}-mysql`;
    await fixture.setUp(SCHEMA, ', snapshot: { chunkSize: 50 }');
    await fixture.service.start();
    await converge('the bootstrap snapshot');
  });
  after(async () => {
    await fixture?.tearDown();
    await stopAll();
  });

  const difference = async () => describeDifference(await expectedRows(mariadb, fixture.db, DOCS), await fixture.actual());
  const converge = (what: string) => waitFor(async () => (await difference()) === '', { timeoutMs: 60_000, intervalMs: 200, what, describe: difference });
  const linesWith = (text: string) => fixture.service.output.filter((l) => l.includes(text)).length;

  /** Breaks the cache behind the pipeline's back: deleted keys and wrong values. */
  async function drift(): Promise<void> {
    for (let id = 1; id <= ROWS; id += 37) await fixture.redis.del(`${fixture.prefix}${fixture.db}.accounts:${id}`);
    for (let id = 2; id <= ROWS; id += 41) await fixture.redis.set(`${fixture.prefix}${fixture.db}.accounts:${id}`, '{"stale":true}');
    assert.notEqual(await difference(), '');
  }

  async function resync(...extra: string[]): Promise<void> {
    const done = linesWith('resync of table done');
    const result = runCli(['resync', '-c', fixture.service.configPath, '--source', source, '--table', `${fixture.db}.accounts`, ...extra], fixture.service.env);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /resync [0-9a-f-]{36} queued for resync\.accounts/);
    await waitFor(() => linesWith('resync of table done') > done, { timeoutMs: 60_000, what: 'the resync to finish', describe: () => fixture.service.recentOutput(5) });
  }

  async function session(statements = ''): Promise<Connection> {
    const connection = await connect(mariadb);
    await connection.query(`USE ${fixture.db}; ${statements}`);
    return connection;
  }

  it('repairs a drifted sink without holding any lock a writer would wait for', async () => {
    await drift();
    // FOR UPDATE NOWAIT fails at once if anyone holds a row lock or a table lock that blocks writers.
    const probe = await session();
    let probing = true;
    let probes = 0;
    const prober = (async () => {
      while (probing) {
        await probe.query('SELECT COUNT(*) FROM accounts FOR UPDATE NOWAIT');
        probes++;
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await resync();
    probing = false;
    await prober;
    await probe.end();
    assert.ok(probes > 5, `lock probes during the resync: ${probes}`);
    await converge('the repaired sink');
    // One row per source, overwritten by each watermark; never captured although resync.* covers it.
    assert.deepEqual(await fixture.sql('SELECT source, kind FROM tidewater_watermarks'), [{ source, kind: 'high' }]);
  });

  it('converges while writers change the rows being read, and writers never meet a lock', async () => {
    await drift();
    // 0 = NOWAIT: a write that meets any row or table lock fails at once (even one held for a single statement).
    const writer = await session('SET SESSION innodb_lock_wait_timeout = 0, lock_wait_timeout = 0');
    let writing = true;
    let writes = 0;
    const load = (async () => {
      while (writing) {
        const id = 1 + Math.floor(Math.random() * (ROWS + 200));
        if (Math.random() < 0.1) await writer.query('DELETE FROM accounts WHERE id = ?', [id]);
        else await writer.query(`INSERT INTO accounts VALUES (?, 'new owner', 1) ON DUPLICATE KEY UPDATE balance = balance + 1`, [id]);
        writes++;
      }
    })();
    // Writes commit between the watermarks and after the read's view: those chunk rows are stale
    // and must be dropped, not emitted. (A WHERE can no longer call SLEEP() to widen the window.)
    // The resync is asked for once the writer is going, so the writes cover all of it.
    await waitFor(() => writes >= 10, { timeoutMs: 30_000, what: 'the writer to start' });
    const before = writes;
    await resync();
    const during = writes - before;
    writing = false;
    await load; // with NOWAIT, any lock in a writer's way would have failed it here
    await writer.end();
    // Only proves the load overlapped the resync; a loaded CI machine managed 33 where a quiet one manages hundreds.
    assert.ok(during >= 10, `writes during the resync: ${during}`);
    await converge('the sink after a resync under load');
    const status = runCli(['status', '-c', fixture.service.configPath], fixture.service.env);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`source ${source}: streaming, lag \\d+\\.\\d s`));
  });

  it('rejects a table the source does not capture and a WHERE that does not parse, naming them', () => {
    const ask = (...args: string[]) => runCli(['resync', '-c', fixture.service.configPath, '--source', source, ...args], fixture.service.env);
    const uncaptured = ask('--table', 'other.accounts');
    assert.equal(uncaptured.code, 1);
    assert.match(uncaptured.stderr, /cannot resync other\.accounts: it is not captured by this source or has no primary key \(captured: resync\.accounts, resync\.scratch\)/);
    const badWhere = ask('--table', 'resync.accounts', '--where', 'balance >>> 3');
    assert.equal(badWhere.code, 1);
    assert.match(badWhere.stderr, /cannot resync resync\.accounts: --where "balance >>> 3" is refused: it is not one SQL condition at "> 3"/);
  });

  it('drops a task whose WHERE fails only when read, says why, and serves the next request', async () => {
    const dropped = linesWith('this resync task is dropped');
    // Valid when asked; the column is gone by the time the task, queued behind a resync held up by a
    // table lock (its chunk read waits for it), is read.
    const ask = (...args: string[]) => runCli(['resync', '-c', fixture.service.configPath, '--source', source, ...args], fixture.service.env);
    const locker = await session('LOCK TABLES accounts WRITE');
    try {
      const ahead = ask('--table', 'resync.accounts');
      assert.equal(ahead.code, 0, ahead.stderr);
      const result = ask('--table', 'resync.scratch', '--where', 'v > 0');
      assert.equal(result.code, 0, result.stderr);
      await fixture.sql('ALTER TABLE scratch DROP COLUMN v');
    } finally {
      await locker.query('UNLOCK TABLES');
      await locker.end();
    }
    await waitFor(() => linesWith('this resync task is dropped') > dropped, { timeoutMs: 60_000, what: 'the task to be dropped', describe: () => fixture.service.recentOutput(5) });
    const line = fixture.service.output.filter((l) => l.includes('this resync task is dropped')).pop()!;
    assert.match(line, /resync\.scratch.*(Unknown column 'v'|v is not a column of resync\.scratch).*; this resync task is dropped: fix the request and ask again/);
    const [{ id }] = await fixture.sql('SELECT MIN(id) AS id FROM accounts');
    await fixture.redis.del(`${fixture.prefix}${fixture.db}.accounts:${id}`);
    assert.match(await difference(), new RegExp(`missing accounts:${id}`));
    await resync('--where', `id <= ${id}`);
    await converge('the sink after a resync limited by WHERE');
  });
  it('a request whose tables already wait, not started, with the same condition joins that request instead of re-reading them', async () => {
    const done = linesWith('resync of table done');
    const ask = (...args: string[]) => {
      const result = runCli(['resync', '-c', fixture.service.configPath, '--source', source, ...args], fixture.service.env);
      assert.equal(result.code, 0, result.stderr);
      return { id: /resync ([0-9a-f-]{36}) /.exec(result.stdout)![1], text: result.stdout };
    };
    // The first task's chunk read waits for this table lock: the requests after it stay queued, not started.
    const locker = await session('LOCK TABLES accounts WRITE');
    try {
      const running = ask('--table', 'resync.accounts');
      const scratch = ask('--table', 'resync.scratch');
      const again = ask('--table', 'resync.scratch');
      assert.equal(again.id, scratch.id);
      assert.match(again.text, new RegExp(`resync ${scratch.id} already waits to re-read resync\\.scratch and has not started: this request joined it`));
      const whole = ask('--table', 'resync.accounts');
      assert.notEqual(whole.id, running.id, 'the task in progress is not joined: its chunk may predate the request');
      assert.equal(ask('--table', 'resync.accounts').id, whole.id);
    } finally {
      await locker.query('UNLOCK TABLES');
      await locker.end();
    }
    await waitFor(() => linesWith('resync of table done') >= done + 3, { timeoutMs: 60_000, what: 'the three resyncs left to finish', describe: () => fixture.service.recentOutput(5) });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(linesWith('resync of table done'), done + 3, 'one read per request, none for the joined ones');
    assert.equal(linesWith('resync request joined a queued one'), 2);
    await converge('the sink after the joined resyncs');
  });

  it('re-reads a chunk at most every 2 s while the sink hangs, says so in status, and finishes once it is back', async () => {
    const status = () => {
      const result = runCli(['status', '-c', fixture.service.configPath], fixture.service.env);
      assert.equal(result.code, 0, result.stderr);
      return result.stdout;
    };
    const done = linesWith('resync of table done');
    process.kill(redis.pid!, 'SIGSTOP');
    try {
      const writer = await session();
      await writer.query('UPDATE accounts SET balance = balance + 1 WHERE id <= 10'); // changes the hung sink falls behind on
      await writer.end();
      await waitFor(async () => /lag [1-9]\d* events/.test(status()), { timeoutMs: 30_000, what: 'the sink to fall behind', describe: async () => status() });
      await new Promise((resolve) => setTimeout(resolve, 2500)); // its lag in seconds passes 2 s
      const queued = runCli(['resync', '-c', fixture.service.configPath, '--source', source, '--table', `${fixture.db}.accounts`], fixture.service.env);
      assert.equal(queued.code, 0, queued.stderr);
      await waitFor(async () => /resync slowed while the sinks catch up/.test(status()), { timeoutMs: 20_000, what: 'status to say the resync is slowed', describe: async () => status() });
      await new Promise((resolve) => setTimeout(resolve, 6000));
      const during = status();
      const rows = Number(/accounts \((\d+) rows so far\)/.exec(during)?.[1] ?? NaN);
      // ~8 s since the request: a handful of 50-row chunks, not the 2000 rows an unpaced resync reads in about a second.
      assert.ok(rows <= 400, `rows re-read while Redis hung: ${rows}\n${during}`);
      assert.equal(linesWith('resync of table done'), done);
    } finally {
      process.kill(redis.pid!, 'SIGCONT');
    }
    await waitFor(() => linesWith('resync of table done') > done, { timeoutMs: 90_000, what: 'the resync to finish once Redis is back', describe: () => fixture.service.recentOutput(5) });
    await converge('the sink after the paced resync');
  });
});
