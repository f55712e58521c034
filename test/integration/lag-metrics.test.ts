import { strict as assert } from 'node:assert';
import { PgRedisFixture } from '../support/pg-redis-fixture';
import { PgServer, RedisServer, startPostgres, startRedis, stopAll } from '../support/servers';
import { waitFor } from '../support/wait';

const DESIGN_METRICS = [
  'cdc_source_events_total', 'cdc_source_lag_seconds', 'cdc_source_backlog_bytes', 'cdc_log_end_offset', 'cdc_sink_lag_events',
  'cdc_sink_lag_seconds', 'cdc_sink_events_total', 'cdc_snapshot_rows_total', 'cdc_snapshot_remaining_rows',
];

/** The value of a metric's sample with these labels, or undefined. */
function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('metrics of docs/architecture.md §6, and sink lag while the sink\'s target is down', function () {
  this.timeout(120_000);
  let pg: PgServer;
  let redis: RedisServer;
  let fixture: PgRedisFixture;

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]); // a Redis of its own: this test kills it
    fixture = new PgRedisFixture(pg, redis, 'lagmetrics');
    await fixture.setUp();
    fixture.redis.on('error', () => undefined); // the test kills Redis on purpose
    await fixture.sql(`INSERT INTO customers (id, name) SELECT g, 'c' || g FROM generate_series(1, 50) g`);
    await fixture.service.start();
  });
  after(async () => {
    await fixture?.tearDown();
    await stopAll();
  });

  const missing = (text: string) => DESIGN_METRICS.filter((name) => !new RegExp(`^${name}\\{`, 'm').test(text));

  it('exposes a sample of every metric named in docs/architecture.md §6', async () => {
    await fixture.sql(`UPDATE customers SET n = n + 1 WHERE id <= 5`);
    await waitFor(async () => missing(await fixture.service.metrics()).length === 0, {
      timeoutMs: 20_000,
      what: 'a sample of every docs/architecture.md §6 metric',
      describe: async () => `missing: ${missing(await fixture.service.metrics()).join(', ')}`,
    });
  });

  it('cdc_sink_lag_seconds rises while the sink cannot write, and returns near 0 once it can', async () => {
    const lagSeconds = async () => sample(await fixture.service.metrics(), 'cdc_sink_lag_seconds', 'sink="cache"') ?? NaN;
    await waitFor(async () => (await lagSeconds()) < 2, { timeoutMs: 20_000, what: 'lag near 0 before the outage' });
    await redis.kill9();
    let writing = true;
    const load = (async () => {
      for (let i = 0; writing; i++) {
        await fixture.sql(`UPDATE customers SET n = n + 1 WHERE id = $1`, [1 + (i % 50)]);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    await waitFor(async () => (await lagSeconds()) > 3, { timeoutMs: 30_000, intervalMs: 500, what: 'cdc_sink_lag_seconds to rise above 3 s', describe: async () => String(await lagSeconds()) });
    const lagEvents = sample(await fixture.service.metrics(), 'cdc_sink_lag_events', 'sink="cache"') ?? 0;
    assert.ok(lagEvents > 0, `cdc_sink_lag_events while the sink is down: ${lagEvents}`);
    await redis.start();
    await waitFor(async () => (await lagSeconds()) < 2, { timeoutMs: 30_000, intervalMs: 500, what: 'cdc_sink_lag_seconds to return near 0', describe: async () => String(await lagSeconds()) });
    writing = false;
    await load;
  });
});
