import { strict as assert } from 'node:assert';
import { Client } from 'pg';
import { PgRedisFixture } from '../support/pg-redis-fixture';
import { PgServer, RedisServer, startPostgres, startRedis, stopAll } from '../support/servers';
import { runCli } from '../support/service-process';
import { waitFor } from '../support/wait';

const ACCOUNTS = {
  schema: `CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance int NOT NULL);
           INSERT INTO accounts SELECT g, 'owner ' || g, g FROM generate_series(1, 5000) g;`,
  expectedRows: { accounts: `SELECT id::text AS k, to_jsonb(accounts)::text AS doc FROM accounts` },
  sourceOptions: 'snapshot: { chunkSize: 50 }',
};

describe('cdc resync (Postgres, DBLog watermarks)', function () {
  this.timeout(120_000);
  let pg: PgServer;
  let redis: RedisServer;
  let fixture: PgRedisFixture;

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    fixture = new PgRedisFixture(pg, redis, 'resync', ACCOUNTS);
    await fixture.setUp();
    await fixture.service.start();
    await converge('the bootstrap snapshot');
  });
  after(async () => {
    if (redis?.pid) process.kill(redis.pid, 'SIGCONT'); // a failed test may leave it stopped
    await fixture?.tearDown();
    await stopAll();
  });

  function converge(what: string): Promise<void> {
    return waitFor(async () => (await fixture.difference()) === '', { timeoutMs: 60_000, intervalMs: 200, what, describe: () => fixture.difference() });
  }

  /** Breaks the cache behind the pipeline's back: deleted keys and wrong values. */
  async function drift(): Promise<void> {
    for (let id = 1; id <= 5000; id += 37) await fixture.redis.del(`${fixture.prefix}public.accounts:${id}`);
    for (let id = 2; id <= 5000; id += 41) await fixture.redis.set(`${fixture.prefix}public.accounts:${id}`, '{"stale":true}');
    assert.notEqual(await fixture.difference(), '');
  }

  async function resync(): Promise<void> {
    const done = fixture.service.output.filter((l) => l.includes('resync of table done')).length;
    const result = runCli(['resync', '-c', fixture.service.configPath, '--source', `${fixture.name}-pg`, '--table', 'public.accounts'], fixture.service.env);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /resync [0-9a-f-]{36} queued for public\.accounts/);
    await waitFor(() => fixture.service.output.filter((l) => l.includes('resync of table done')).length > done, {
      timeoutMs: 60_000,
      what: 'the resync to finish',
      describe: () => fixture.service.recentOutput(5),
    });
  }

  it('repairs a drifted sink without taking any lock that blocks a writer', async () => {
    await drift();
    const probe = new Client({ connectionString: fixture.pgUrl });
    await probe.connect();
    let probing = true;
    let probes = 0;
    const prober = (async () => {
      // EXCLUSIVE conflicts with every lock mode above a plain read's ACCESS SHARE.
      while (probing) {
        await probe.query('BEGIN; LOCK TABLE accounts IN EXCLUSIVE MODE NOWAIT; COMMIT');
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
  });

  it('converges while a write load runs, and writers never wait for a lock', async () => {
    await drift();
    const writer = new Client({ connectionString: fixture.pgUrl });
    await writer.connect();
    await writer.query(`SET lock_timeout = '250ms'`);
    let writing = true;
    let writes = 0;
    const load = (async () => {
      while (writing) {
        const id = 1 + Math.floor(Math.random() * 5200);
        if (Math.random() < 0.1) await writer.query('DELETE FROM accounts WHERE id = $1', [id]);
        else await writer.query(`INSERT INTO accounts VALUES ($1, 'new owner', 1) ON CONFLICT (id) DO UPDATE SET balance = accounts.balance + 1`, [id]);
        writes++;
      }
    })();
    // The resync is asked for once the writer is going, so the writes cover all of it.
    await waitFor(() => writes >= 10, { timeoutMs: 30_000, what: 'the writer to start' });
    const before = writes;
    await resync();
    const during = writes - before;
    writing = false;
    await load; // a lock timeout would have rejected here
    await writer.end();
    // Only proves the load overlapped the resync; a loaded CI machine manages far fewer than a quiet one.
    assert.ok(during >= 10, `writes during the resync: ${during}`);
    await converge('the sink after a resync under load');
    const status = runCli(['status', '-c', fixture.service.configPath], fixture.service.env);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /source resync-pg: streaming, lag \d+\.\d s/);
  });

  it('rejects a resync of a table the source does not capture, naming it', () => {
    const result = runCli(['resync', '-c', fixture.service.configPath, '--source', `${fixture.name}-pg`, '--table', 'public.nope'], fixture.service.env);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /cannot resync public\.nope: it is not captured by this source/);
  });

  function status(): string {
    const result = runCli(['status', '-c', fixture.service.configPath], fixture.service.env);
    assert.equal(result.code, 0, result.stderr);
    return result.stdout;
  }

  it('re-reads a chunk at most every 2 s while Redis hangs, says so in status, and finishes once it is back', async () => {
    const resyncsDone = () => fixture.service.output.filter((l) => l.includes('resync of table done')).length;
    const done = resyncsDone();
    process.kill(redis.pid!, 'SIGSTOP');
    try {
      await fixture.sql(`UPDATE accounts SET balance = balance + 1 WHERE id <= 10`); // changes the hung sink falls behind on
      await waitFor(async () => /lag [1-9]\d* events/.test(status()), { timeoutMs: 30_000, what: 'the cache sink to fall behind', describe: async () => status() });
      await new Promise((resolve) => setTimeout(resolve, 2500)); // its lag in seconds passes 2 s
      const queued = runCli(['resync', '-c', fixture.service.configPath, '--source', `${fixture.name}-pg`, '--table', 'public.accounts'], fixture.service.env);
      assert.equal(queued.code, 0, queued.stderr);
      await waitFor(async () => /resync slowed while the sinks catch up/.test(status()), { timeoutMs: 20_000, what: 'status to say the resync is slowed', describe: async () => status() });
      await new Promise((resolve) => setTimeout(resolve, 6000));
      const during = status();
      const rows = Number(/public\.accounts \((\d+) rows so far\)/.exec(during)?.[1] ?? NaN);
      // ~8 s since the request: a handful of 50-row chunks, not the 5000 rows an unpaced resync reads in about a second.
      assert.ok(rows <= 400, `rows re-read while Redis hung: ${rows}\n${during}`);
      assert.equal(resyncsDone(), done);
    } finally {
      process.kill(redis.pid!, 'SIGCONT');
    }
    await waitFor(() => resyncsDone() > done, { timeoutMs: 90_000, what: 'the resync to finish once Redis is back', describe: () => fixture.service.recentOutput(5) });
    await converge('the sink after the paced resync');
    assert.doesNotMatch(status(), /resync slowed/);
  });
});
