import { strict as assert } from 'node:assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { snapshotVersion } from '../../core/event/version';
import { keyString } from '../../core/event/change-event';
import { parseLsn } from '../../connectors/postgres/lsn';
import { forEachLogEvent, PgRedisFixture, readWholeLog } from '../support/pg-redis-fixture';
import { PgServer, RedisServer, startPostgres, startRedis, stopAll } from '../support/servers';
import { waitFor } from '../support/wait';

const ACCOUNTS = {
  schema: `CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance bigint NOT NULL, n int NOT NULL DEFAULT 0);
           INSERT INTO accounts SELECT g, 'owner ' || g, g * 10, 0 FROM generate_series(1, 20000) g;`,
  expectedRows: {
    accounts: `SELECT id::text AS k, json_build_object('id', id, 'owner', owner, 'balance', balance::text, 'n', n)::text AS doc FROM accounts`,
  },
};

describe('Postgres source: snapshot bootstrap', function () {
  this.timeout(180_000);
  let pg: PgServer;
  let redis: RedisServer;
  let fixture: PgRedisFixture;
  let n = 0;

  before(async () => ([pg, redis] = await Promise.all([startPostgres(), startRedis()])));
  after(async () => stopAll());
  afterEach(async () => fixture.tearDown());

  const converge = (what: string, timeoutMs = 60_000) =>
    waitFor(async () => (await fixture.difference()) === '', { timeoutMs, intervalMs: 200, what, describe: () => fixture.difference() });

  /** Random updates, inserts and deletes until stopped; returns the number of transactions. */
  function writeConcurrently(): { stop(): Promise<number> } {
    let running = true;
    let count = 0;
    const done = (async () => {
      while (running) {
        const id = 1 + Math.floor(Math.random() * 21000);
        const roll = Math.random();
        if (roll < 0.1) await fixture.sql('DELETE FROM accounts WHERE id = $1', [id]);
        else await fixture.sql(
          `INSERT INTO accounts VALUES ($1, $2, $3, 0) ON CONFLICT (id) DO UPDATE SET balance = accounts.balance + 1, n = accounts.n + 1`,
          [id, `owner ${id}`, id * 10],
        );
        count++;
      }
    })();
    return { stop: async () => ((running = false), await done, count) };
  }

  it('reads existing rows in a snapshot consistent with streaming, while writes go on', async () => {
    fixture = new PgRedisFixture(pg, redis, `snap${++n}`, { ...ACCOUNTS, sourceOptions: 'snapshot: { chunkSize: 500, parallelism: 2 }' });
    await fixture.setUp();
    const writer = writeConcurrently();
    await fixture.service.start();
    await new Promise((r) => setTimeout(r, 1500));
    const transactions = await writer.stop();
    await converge('Redis to equal Postgres after the snapshot and concurrent writes');
    await fixture.service.stop();

    const events = await readWholeLog(fixture.dataDir);
    const snapshotRows = events.filter((e) => e.op === 'r');
    assert.ok(snapshotRows.length >= 19000, `snapshot rows in the log: ${snapshotRows.length}`);
    const versions = new Set(snapshotRows.map((e) => e.source.version));
    assert.equal(versions.size, 1, 'every snapshot row carries the one snapshot version');
    const snapshotPoint = parseLsn(snapshotRows[0].source.position);
    assert.equal([...versions][0], snapshotVersion(snapshotPoint));
    // Streamed changes are all newer than the snapshot, and no key has two different images at one version.
    // Before the rows, the snapshot's truncate just below its version (a re-snapshot removes rows deleted meanwhile).
    const truncates = events.filter((e) => e.op === 't' && e.source.snapshot);
    assert.ok(truncates.length > 0 && truncates.every((e) => e.source.version < [...versions][0]), 'a truncate just below the snapshot version');
    const streamed = events.filter((e) => e.op !== 'r' && !e.source.snapshot);
    assert.ok(streamed.length > 0 && transactions > 0);
    for (const e of streamed) assert.ok(e.source.version > [...versions][0], `streamed change ${e.source.position} is not newer than the snapshot`);
    const images = new Map<string, string>();
    for (const e of events) {
      const id = `${keyString(e.key)}@${e.source.version}`;
      const image = JSON.stringify(e.after);
      assert.ok(!images.has(id) || images.get(id) === image, `key ${id} appears with two different images`);
      images.set(id, image);
    }
  });

  it('resumes a snapshot interrupted by kill -9 instead of starting over, and ends equal', async () => {
    fixture = new PgRedisFixture(pg, redis, `snap${++n}`, { ...ACCOUNTS, sourceOptions: 'snapshot: { chunkSize: 200, parallelism: 1 }' });
    await fixture.setUp();
    await fixture.service.start();
    // Under way = a durable checkpoint records snapshot rows already in the log.
    const stateFile = join(fixture.dataDir, 'var', 'sources', `${fixture.name}-pg.json`);
    await waitFor(() => snapshottedRows(stateFile) > 0, { timeoutMs: 30_000, intervalMs: 5, what: 'the snapshot to be under way' });
    await fixture.service.kill9();
    const writer = writeConcurrently();
    await fixture.service.start();
    await new Promise((r) => setTimeout(r, 500));
    await writer.stop();
    await converge('Redis to equal Postgres after a resumed snapshot');
    const resumed = fixture.service.output.find((l) => l.includes('resuming table snapshot'));
    assert.ok(resumed, `the restart resumed the snapshot:\n${fixture.service.recentOutput(40)}`);
    assert.match(resumed!, /rowsDone=[1-9]\d*/);
    await fixture.service.stop();
    const snapshotRows = (await readWholeLog(fixture.dataDir)).filter((e) => e.op === 'r');
    assert.ok(snapshotRows.length < 2 * 20000, `the resumed snapshot did not start over (${snapshotRows.length} snapshot rows)`);
  });

  it('snapshots a 1M-row table with the service staying under 300 MB of memory', async function () {
    fixture = new PgRedisFixture(pg, redis, `snap${++n}`, {
      schema: `CREATE TABLE big (id bigint PRIMARY KEY, payload text NOT NULL, amount numeric(12,2), at timestamptz(6) NOT NULL DEFAULT now());
               INSERT INTO big SELECT g, repeat('x', 100) || g, g / 100.0, now() FROM generate_series(1, 1000000) g;
               ANALYZE big;`,
      expectedRows: { big: 'SELECT 1 AS k, 1 AS doc WHERE false' },
      noSinks: true,
    });
    await fixture.setUp();
    await fixture.service.start();
    const pid = fixture.service.pid!;
    const started = Date.now();
    const samples: string[] = [];
    const sampler = setInterval(async () => {
      const text = await fixture.service.metrics().catch(() => '');
      const pick = (name: string) => Math.round(Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? 0) / 2 ** 20);
      samples.push(`rss ${pick('process_resident_memory_bytes')} heapTotal ${pick('nodejs_heap_size_total_bytes')} heap ${pick('nodejs_heap_size_used_bytes')} external ${pick('nodejs_external_memory_bytes')}`);
    }, 1000);
    await waitFor(() => fixture.service.output.some((l) => l.includes('snapshot complete')), {
      timeoutMs: 150_000,
      intervalMs: 250,
      what: 'the 1M-row snapshot to complete',
      describe: () => fixture.service.recentOutput(5),
    });
    clearInterval(sampler);
    if (process.env.CDC_DEBUG_MEMORY) console.log(samples.join('\n'));
    const seconds = (Date.now() - started) / 1000;
    const peakKb = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
    console.log(`      1M rows snapshotted into the log in ${seconds.toFixed(1)} s (${Math.round(1e6 / seconds)} rows/s); peak RSS ${Math.round(peakKb / 1024)} MB`);
    assert.ok(peakKb < 300 * 1024, `peak RSS ${Math.round(peakKb / 1024)} MB`);
    await fixture.service.stop();
    let logged = 0;
    await forEachLogEvent(fixture.dataDir, (e) => (logged += e.op === 'r' ? 1 : 0));
    assert.equal(logged, 1_000_000);
  });
});

/** Snapshot rows recorded in the source's saved checkpoint (0 while none). */
function snapshottedRows(stateFile: string): number {
  if (!existsSync(stateFile)) return 0;
  try {
    const position = JSON.parse(readFileSync(stateFile, 'utf8')).position as string;
    if (!position.startsWith('{')) return 0;
    const tables = Object.values(JSON.parse(position).snapshot?.tables ?? {}) as { rows: number }[];
    return tables.reduce((n, t) => n + t.rows, 0);
  } catch {
    return 0; // replaced while we read it
  }
}
