import { strict as assert } from 'node:assert';
import { PgRedisFixture } from '../support/pg-redis-fixture';
import { seededRandom } from '../support/seeded-random';
import { PgServer, redisRaw, RedisServer, startPostgres, startRedis, stopAll } from '../support/servers';
import { runCli, ServiceProcess } from '../support/service-process';
import { startTcpProxy, TcpProxy } from '../support/tcp-proxy';
import { waitFor } from '../support/wait';
import { assertNoCrash, metricValue, pgShopLoad, readyz, restarts, sleep, WriteLoad } from './connection-faults-helpers';

// Faults on the connections of a Postgres source and a Redis sink, each under a small
// write load, each ending with Redis compared to Postgres row by row.
const CUSTOMERS = 10_000;
/** The line the WAL stream logs once START_REPLICATION runs (pretty or JSON log format). */
const STREAMING = /(\] streaming slot=|"msg":"streaming")/;
const SEED = Number(process.env.FAULT_SEED ?? (Date.now() % 1_000_000));

describe('Connection faults: Postgres → log → Redis under a write load', function () {
  this.timeout(240_000);
  let pg: PgServer;
  let redis: RedisServer;
  let fixture: PgRedisFixture;
  let load: WriteLoad | null = null;
  let proxy: TcpProxy | null = null;
  let testNumber = 0;
  const random = seededRandom(SEED);

  before(async () => {
    console.log(`    connection-faults seed ${SEED} (FAULT_SEED=${SEED} repeats the random moments)`);
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
  });
  after(async () => stopAll());
  afterEach(async () => {
    await load?.stop();
    load = null;
    await fixture?.tearDown();
    await proxy?.close();
    proxy = null;
  });

  interface CaseOptions {
    /** Start the fault when the service prints a line matching this (else once it is ready). */
    trigger?: RegExp;
    /** Route the service's Postgres connections through a TCP proxy. */
    viaProxy?: boolean;
    sourceOptions?: string;
    fault(): Promise<void>;
  }

  /** Runs one fault under load; resolves with the service's metrics once Redis equals Postgres. */
  async function faultCase(options: CaseOptions): Promise<string> {
    fixture = new PgRedisFixture(pg, redis, `fault${++testNumber}`, {
      sourceOptions: options.sourceOptions ?? 'snapshot: { chunkSize: 200 }, heartbeatIntervalMs: 1000, livenessTimeoutMs: 3000',
    });
    await fixture.setUp();
    fixture.redis.on('error', () => undefined); // the Redis outage case stops the server under this client too
    await fixture.sql(`INSERT INTO customers (id, name, balance) SELECT g, 'customer ' || g, g / 100.0 FROM generate_series(1, ${CUSTOMERS}) g`);
    await fixture.sql(`INSERT INTO orders SELECT g, g, 'seed' FROM generate_series(1, 500) g; INSERT INTO order_items SELECT g, 1, 1 FROM generate_series(1, 500) g`);
    let pgUrl = fixture.pgUrl;
    if (options.viaProxy) {
      proxy = await startTcpProxy({ port: pg.port });
      pgUrl = pgUrl.replace(`:${pg.port}/`, `:${proxy.port}/`);
    }
    let fired: Promise<void> | null = null;
    const fire = () => (fired ??= options.fault());
    const { configPath, httpPort, env } = fixture.service;
    fixture.service = new ServiceProcess(configPath, httpPort, { ...env, PG_URL: pgUrl }, (line) => {
      if (options.trigger?.test(line)) void fire();
    });
    load = pgShopLoad(fixture.pgUrl, random, CUSTOMERS);
    await fixture.service.start({ waitUntilReady: !options.trigger });
    if (!options.trigger) fire();
    await waitFor(() => fired !== null, { timeoutMs: 60_000, what: `the fault's trigger ${options.trigger}`, describe: () => fixture.service.recentOutput() });
    await fired;
    const faultEnded = Date.now();
    await waitFor(async () => (await readyz(fixture.service)).status === 200, {
      timeoutMs: 60_000,
      what: 'the service to be ready again after the fault',
      describe: async () => `${(await readyz(fixture.service)).body}\n${fixture.service.recentOutput()}`,
    });
    const readyAfterMs = Date.now() - faultEnded;
    await sleep(1500); // changes after the recovery flow too
    const counts = await load.stop();
    load = null;
    assert.ok(counts.committed > 20, `the write load committed only ${counts.committed} transactions`);
    await waitFor(async () => (await fixture.difference()) === '', {
      timeoutMs: 60_000,
      what: 'Redis to equal Postgres row by row',
      describe: async () => `${await fixture.difference()}\n${fixture.service.recentOutput()}`,
    });
    console.log(`      ready ${(readyAfterMs / 1000).toFixed(1)} s after the fault ended; ${counts.committed} transactions committed under load (${counts.failed} failed during the fault); rows equal`);
    assertNoCrash(fixture.service);
    const metrics = await fixture.service.metrics();
    assert.equal(metricValue(metrics, `cdc_source_up{source="${fixture.name}-pg"}`), 1, 'cdc_source_up is 1 again');
    assert.equal(metricValue(metrics, 'cdc_sink_up{sink="cache"}'), 1, 'cdc_sink_up is 1 again');
    assert.equal(await fixture.service.stop(), 0, `the service stops cleanly:\n${fixture.service.recentOutput()}`);
    return metrics;
  }

  const source = () => `source ${fixture.name}-pg`;
  /** `cdc status` as an operator runs it (blocks this process for a moment: only while nothing must flow through the proxy). */
  const cdcStatus = () => {
    const { stdout, stderr } = runCli(['status', '-c', fixture.service.configPath], fixture.service.env);
    return stdout + stderr;
  };
  const terminate = (where: string) => fixture.sql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND ${where}`);

  it('survives a Postgres restart the moment the snapshot is read (the snapshot → stream hand-off)', async () => {
    const metrics = await faultCase({ trigger: /table snapshot done/, fault: () => pg.restart() });
    assert.ok(restarts(metrics, source()).total >= 1, `the restart is counted in cdc_component_restarts_total:\n${metrics}`);
  });

  it('survives a Postgres restart right after "snapshot complete" is logged', async () => {
    await faultCase({ trigger: /snapshot complete/, fault: () => pg.restart() });
  });

  for (let i = 1; i <= 3; i++) {
    it(`survives a Postgres restart at a seeded random moment (${i} of 3)`, async () => {
      const delayMs = Math.floor(random() * 4000);
      console.log(`      restart ${delayMs} ms after the service started (seed ${SEED})`);
      await faultCase({ trigger: /service started/, fault: async () => {
        await sleep(delayMs);
        await pg.restart();
      } });
    });
  }

  it('survives Postgres restarting again and again while it reconnects (seeded gaps)', async () => {
    const gaps = Array.from({ length: 4 }, () => 200 + Math.floor(random() * 1300));
    console.log(`      restarts ${gaps.join(', ')} ms apart (seed ${SEED})`);
    const metrics = await faultCase({ trigger: STREAMING, fault: async () => {
      for (const gap of gaps) {
        await pg.restart();
        await sleep(gap);
      }
    } });
    assert.ok(restarts(metrics, source()).total >= 1, metrics);
  });

  it('reconnects when its walsender is terminated (pg_terminate_backend)', async () => {
    const metrics = await faultCase({ trigger: STREAMING, fault: async () => {
      const [row] = await fixture.sql(`SELECT count(pg_terminate_backend(active_pid))::int AS n FROM pg_replication_slots WHERE active_pid IS NOT NULL AND database = current_database()`);
      assert.equal(row.n, 1, 'one walsender was terminated');
    } });
    assert.deepEqual(restarts(metrics, source()).reasons, ['connection_lost']);
  });

  it('reconnects when its control connection is terminated', async () => {
    const metrics = await faultCase({ trigger: STREAMING, fault: async () => {
      await waitFor(async () => (await terminate(`datname = current_database() AND query LIKE '%confirmed_flush_lsn%'`)).length === 1, {
        timeoutMs: 10_000,
        what: 'the control connection (its last query reads confirmed_flush_lsn)',
      });
    } });
    assert.deepEqual(restarts(metrics, source()).reasons, ['connection_lost']);
  });

  it('resumes the snapshot when a snapshot reader is terminated mid-snapshot', async () => {
    const metrics = await faultCase({
      trigger: /snapshotting table/,
      sourceOptions: 'snapshot: { chunkSize: 50, parallelism: 2 }, heartbeatIntervalMs: 1000, livenessTimeoutMs: 3000',
      fault: async () => {
        await waitFor(async () => (await terminate(`datname = current_database() AND query LIKE '% ORDER BY % LIMIT %'`)).length > 0, {
          timeoutMs: 10_000,
          what: 'a snapshot reader to terminate',
        });
      },
    });
    assert.ok(restarts(metrics, source()).total >= 1);
  });

  it('takes a blackholed replication connection for dead (liveness watchdog) and reconnects once the network is back', async () => {
    let seenDown = '';
    let status = '';
    const metrics = await faultCase({
      viaProxy: true,
      trigger: STREAMING,
      // No heartbeat queries: the control connection stays quiet, so the replication watchdog is what notices.
      sourceOptions: 'snapshot: { chunkSize: 1000 }, heartbeatIntervalMs: 0, livenessTimeoutMs: 2000',
      fault: async () => {
        proxy!.blackhole();
        await waitFor(async () => {
          const { status, body } = await readyz(fixture.service);
          if (status === 503) seenDown = body;
          return status === 503;
        }, { timeoutMs: 15_000, what: '/readyz to report the source down', describe: () => fixture.service.recentOutput() });
        status = cdcStatus();
        await sleep(3000);
        proxy!.restore();
      },
    });
    assert.match(seenDown, new RegExp(`source ${fixture.name}-pg: not streaming`), seenDown);
    assert.match(status, new RegExp(`source ${fixture.name}-pg: reconnecting since \\S+, attempt \\d+, last error: .*received nothing`), status);
    const watchdog = fixture.service.output.find((l) => /received nothing .* for \d+ s \(livenessTimeoutMs 2000\)/.test(l));
    assert.ok(watchdog, `the watchdog says why it reconnects:\n${fixture.service.recentOutput(60)}`);
    assert.match(watchdog, /127\.0\.0\.1:\d+/, 'it names the server');
    assert.ok(restarts(metrics, source()).reasons.includes('liveness_timeout'), metrics);
  });

  it('reports a Redis outage on /readyz (503 naming the sink) and catches up once Redis is back', async () => {
    let seenDown = '';
    let status = '';
    const metrics = await faultCase({
      trigger: STREAMING,
      fault: async () => {
        await redisRaw(redis.port, 'SHUTDOWN SAVE\r\n', /./, 5000).catch(() => ''); // saves every write, then exits
        const outageStarted = Date.now();
        await waitFor(async () => {
          const { status, body } = await readyz(fixture.service);
          if (status === 503) seenDown = body;
          return status === 503;
        }, { timeoutMs: 15_000, what: '/readyz to report the sink down', describe: () => fixture.service.recentOutput() });
        status = cdcStatus();
        await sleep(Math.max(0, 8000 - (Date.now() - outageStarted)));
        await redis.start();
      },
    });
    assert.match(seenDown, /sink cache: not connected \(reconnecting since/, seenDown);
    assert.match(status, /sink cache: reconnecting since \S+, last error: (writing .* has not finished after \d+ s|write .* failed)/, status);
    assert.equal(metricValue(metrics, 'cdc_sink_up{sink="cache"}'), 1);
    assert.match(metrics, /cdc_sink_apply_seconds_count\{sink="cache"\} [1-9]/, 'apply latency is recorded');
    assert.match(metrics, /cdc_end_to_end_seconds_count\{sink="cache"\} [1-9]/, 'end-to-end latency is recorded');
    assert.match(metrics, new RegExp(`cdc_source_batch_seconds_count\\{source="${fixture.name}-pg"\\} [1-9]`), 'source batch latency is recorded');
  });

  it('answers a second concurrent reprocess of one sink with 409 and runs one rebuild (issue 11 item 7)', async () => {
    let answers: Array<{ status: number; body: string }> = [];
    await faultCase({
      trigger: STREAMING,
      fault: async () => {
        const post = async () => {
          const response = await fetch(`http://127.0.0.1:${fixture.service.httpPort}/api/reprocess`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ sink: 'cache' }),
          });
          return { status: response.status, body: await response.text() };
        };
        answers = await Promise.all([post(), post(), post()]);
        await waitFor(() => fixture.service.output.some((l) => l.includes('reprocess done')), {
          timeoutMs: 60_000,
          what: 'the reprocess to switch readers',
          describe: () => fixture.service.recentOutput(),
        });
      },
    });
    const statuses = answers.map((a) => a.status).sort();
    assert.deepEqual(statuses, [202, 409, 409], JSON.stringify(answers));
    for (const refused of answers.filter((a) => a.status === 409)) assert.match(refused.body, /already being reprocessed/);
    const started = fixture.service.output.filter((l) => l.includes('reprocessing sink from log offset zero'));
    assert.equal(started.length, 1, `one rebuild runner:\n${started.join('\n')}`);
  });
});
