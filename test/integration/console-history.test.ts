import { strict as assert } from 'node:assert';
import { MetricsHistory } from '../../core/http/history';
import { Metrics } from '../../core/http/metrics';

describe('console history: the last hour of lag and throughput kept in memory', () => {
  it('keeps one hour of 5 s samples (720), oldest first, dropping the oldest when full', async () => {
    const metrics = new Metrics();
    const history = new MetricsHistory(metrics, { intervalMs: 5000, keepMs: 3_600_000 });
    assert.equal(history.capacity, 720);
    const small = new MetricsHistory(metrics, { intervalMs: 1000, keepMs: 3000 });
    for (let i = 1; i <= 5; i++) {
      metrics.sinkLagEvents.set({ sink: 'cache' }, i);
      await small.sample();
    }
    assert.deepEqual(small.points().map((p) => p.sinks.cache.lagEvents), [3, 4, 5]);
  });

  it('sums counters per source and sink and gives events per second between samples', async () => {
    const metrics = new Metrics();
    const history = new MetricsHistory(metrics, { intervalMs: 5000 });
    metrics.sourceEvents.inc({ source: 'pg', table: 'public.a', op: 'c' }, 100);
    metrics.sinkEvents.inc({ sink: 'cache', result: 'processed' }, 40);
    const first = await history.sample();
    metrics.sourceEvents.inc({ source: 'pg', table: 'public.b', op: 'u' }, 500);
    metrics.sinkEvents.inc({ sink: 'cache', result: 'processed' }, 1000);
    metrics.sourceLagSeconds.set({ source: 'pg' }, 1.5);
    const now = await history.sample();
    first.t = now.t - 10_000; // as if taken exactly 10 s before (sampling itself takes a moment on a busy machine)
    assert.equal(now.sources.pg.eventsTotal, 600);
    assert.equal(now.sources.pg.lagSeconds, 1.5);
    const rates = history.rates(now);
    assert.equal(rates.sources.pg, 50);
    assert.equal(rates.sinks.cache, 100);
  });
});
