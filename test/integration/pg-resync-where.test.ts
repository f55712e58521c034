import { strict as assert } from 'node:assert';
import { PgRedisFixture } from '../support/pg-redis-fixture';
import { PgServer, RedisServer, startPostgres, startRedis, stopAll } from '../support/servers';
import { runCli } from '../support/service-process';
import { waitFor } from '../support/wait';

const ACCOUNTS = {
  schema: `CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance int NOT NULL);
           INSERT INTO accounts SELECT g, 'owner ' || g, g FROM generate_series(1, 4000) g;`,
  expectedRows: { accounts: `SELECT id::text AS k, to_jsonb(accounts)::text AS doc FROM accounts` },
  sourceOptions: 'snapshot: { chunkSize: 20 }',
};

describe('cdc resync --where on Postgres: checked before queueing, dropped when it fails at run time, cancellable', function () {
  this.timeout(180_000);
  let pg: PgServer;
  let redis: RedisServer;
  let fixture: PgRedisFixture;
  const source = 'wfilter-pg';

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    fixture = new PgRedisFixture(pg, redis, 'wfilter', ACCOUNTS);
    await fixture.setUp();
    await fixture.service.start();
    await converge('the bootstrap snapshot');
  });
  after(async () => {
    await fixture?.tearDown();
    await stopAll();
  });

  function converge(what: string): Promise<void> {
    return waitFor(async () => (await fixture.difference()) === '', { timeoutMs: 90_000, intervalMs: 250, what, describe: () => fixture.difference() });
  }
  const cli = (...args: string[]) => runCli([args[0], '-c', fixture.service.configPath, ...args.slice(1)], fixture.service.env);
  const resync = (...extra: string[]) => cli('resync', '--source', source, '--table', 'public.accounts', ...extra);
  const count = (text: string) => fixture.service.output.filter((l) => l.includes(text)).length;

  it('refuses, before queueing, a WHERE that is not a plain condition or that the server rejects', () => {
    const cases: Array<[string, RegExp]> = [
      ['id::int / 0 = 1', /400: .*--where "id::int \/ 0 = 1" is refused: /],
      [`pg_drop_replication_slot('x') IS NULL`, /400: .*the function call pg_drop_replication_slot\(\.\.\.\)/],
      ['id > 5 -- comment', /400: .*comments are not allowed/],
      ['password IS NULL', /400: .*password is not a column of public\.accounts/],
      [`balance = 'abc'`, /400: .*cannot resync public\.accounts where balance = 'abc': invalid input syntax for type integer/],
    ];
    const before = count('resync requested');
    for (const [where, message] of cases) {
      const result = resync('--where', where);
      assert.equal(result.code, 1, `${where}: ${result.stdout}`);
      assert.match(result.stderr, message, where);
    }
    assert.equal(count('resync requested'), before, 'nothing was queued');
  });

  it('drops a resync whose WHERE fails on the data, shows why in status, and a later resync restores rows deleted behind its back', async () => {
    // Valid SQL that only fails when a row is compared: a LIKE pattern ending in its escape character (22025).
    const failing = resync('--where', 'owner LIKE $$owner 1\\$$');
    assert.equal(failing.code, 0, failing.stderr);
    const failingId = /resync ([0-9a-f-]{36}) queued/.exec(failing.stdout)![1];
    await waitFor(() => count('this resync task is dropped') > 0, { timeoutMs: 60_000, what: 'the failing resync to be dropped', describe: () => fixture.service.recentOutput(5) });
    const status = cli('status');
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`resync ${failingId} of public\\.accounts where owner LIKE .* dropped at .*LIKE pattern must not end with escape character`));

    for (let id = 1; id <= 4000; id += 53) await fixture.redis.del(`${fixture.prefix}public.accounts:${id}`);
    assert.notEqual(await fixture.difference(), '');
    const done = count('resync of table done');
    const repair = resync('--where', 'id BETWEEN 1 AND 4000');
    assert.equal(repair.code, 0, repair.stderr);
    await waitFor(() => count('resync of table done') > done, { timeoutMs: 120_000, what: 'the repairing resync to finish', describe: () => fixture.service.recentOutput(5) });
    await converge('the sink repaired by the resync after the dropped one');
  });

  it('cdc resync --cancel stops a long resync and removes it from the durable queue', async () => {
    // Long enough that the resync is still running when the cancel arrives, even on an idle machine.
    await fixture.sql(`INSERT INTO accounts SELECT g, 'owner ' || g, g FROM generate_series(4001, 60000) g`);
    const started = resync();
    assert.equal(started.code, 0, started.stderr);
    const requestId = /resync ([0-9a-f-]{36}) queued/.exec(started.stdout)![1];
    const done = count('resync of table done');
    const cancel = cli('resync', '--source', source, '--cancel', requestId);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.match(cancel.stdout, new RegExp(`resync ${requestId} cancelled; tables it had left: public\\.accounts`));
    const again = cli('resync', '--source', source, '--cancel', requestId);
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`404: source ${source} has no resync ${requestId} queued or running`));
    // 60,000 rows in chunks of 20 take far longer than this: a resync still running would report progress.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.equal(count('resync of table done'), done, 'the cancelled resync never finished');
    const status = cli('status', '--json');
    const checkpoint = (JSON.parse(status.stdout) as { sources: Array<{ checkpoint: string | null }> }).sources[0].checkpoint ?? '';
    assert.ok(!checkpoint.includes(requestId), `the durable checkpoint still holds the cancelled request: ${checkpoint}`);
  });

  it('a request whose tables already wait, not started, with the same condition joins that request instead of re-reading them', async () => {
    const done = count('resync of table done');
    // 60,000 rows in chunks of 20 (the test before): the requests after the first stay queued, not started.
    const queued: string[] = [];
    {
      const ask = (...extra: string[]) => {
        const result = resync(...extra);
        assert.equal(result.code, 0, result.stderr);
        queued.push(result.stdout);
        return /resync ([0-9a-f-]{36}) /.exec(result.stdout)![1];
      };
      const running = ask();
      const limited = ask('--where', 'id <= 100');
      assert.equal(ask('--where', 'id <= 100'), limited, 'the same condition joins the waiting request');
      assert.match(queued.at(-1)!, new RegExp(`resync ${limited} already waits to re-read public\\.accounts with the same condition and has not started: this request joined it`));
      const other = ask('--where', 'id <= 200');
      assert.notEqual(other, limited, 'another condition is a request of its own');
      const whole = ask();
      assert.notEqual(whole, running, 'the table in progress is not joined: its first chunk may predate the request');
      assert.equal(ask(), whole, 'a second whole-table request joins the waiting one');
      for (const id of [running, whole]) assert.equal(cli('resync', '--source', source, '--cancel', id).code, 0);
    }
    await waitFor(() => count('resync of table done') >= done + 2, { timeoutMs: 120_000, what: 'the two limited resyncs to finish', describe: () => fixture.service.recentOutput(5) });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(count('resync of table done'), done + 2, `one read per request left, none for the joined ones:\n${queued.join('')}`);
    assert.equal(count('resync request joined a queued one'), 2);
    await converge('the sink after the joined resyncs');
  });
});
