import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GenerationalSink } from '../../core/contracts/sink';
import { Metrics } from '../../core/http/metrics';
import { ChangeLog, LogRecord } from '../../core/log/change-log';
import { makeVersion } from '../../core/event/version';
import { JsonStateFile } from '../../core/runtime/json-state';
import { createLogger } from '../../core/runtime/logger';
import { ManagedSink, SinkGenerationState } from '../../core/runtime/managed-sink';
import { makeEvent } from '../support/events';
import { tempFileLogs } from '../support/temp-file-logs';

/**
 * A generational sink held in memory (our sink contract, not a database): the
 * rebuilt generation's writes can be held, to keep a reprocess in its
 * promoting phase (old runner stopped, new one not at the log end yet).
 */
class HeldSink implements GenerationalSink {
  readonly name = 'cache';
  generation = 1;
  private requested = 1;
  /** Events applied by the instances writing each generation. */
  static applied = new Map<number, number>();
  /** While set, write() of a rebuilt generation waits for it. */
  static hold: Promise<void> | null = null;
  /** While set, write() of the first (live) generation waits for it. */
  static holdLive: Promise<void> | null = null;
  /** promote() waits for it: the reprocess stays in its promoting phase. */
  static promoteHold: Promise<void> = Promise.resolve();
  static promoted = 0;

  async liveGeneration(): Promise<number> {
    return 1 + HeldSink.promoted;
  }
  useGeneration(generation: number): void {
    this.requested = generation;
  }
  async open(): Promise<void> {
    this.generation = this.requested;
  }
  async write(batch: readonly LogRecord[]): Promise<void> {
    if (this.generation > 1 && HeldSink.hold) await HeldSink.hold;
    if (this.generation === 1 && HeldSink.holdLive) await HeldSink.holdLive;
    HeldSink.applied.set(this.generation, (HeldSink.applied.get(this.generation) ?? 0) + batch.length);
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
  async promote(): Promise<void> {
    await HeldSink.promoteHold;
    HeldSink.promoted++;
  }
}

const gauge = async (metrics: Metrics, name: string): Promise<number | undefined> =>
  (await metrics.registry.getSingleMetric(name)?.get())?.values.find((v) => v.labels.sink === 'cache')?.value;

async function until(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('reprocess: the live generation first (its lag metrics while promoting, a rebuild that yields to it)', function () {
  this.timeout(60_000);
  const openLog = tempFileLogs('cdc-managed-lag-');
  let stateDir = '';
  beforeEach(() => (stateDir = mkdtempSync(join(tmpdir(), 'cdc-managed-lag-state-'))));
  afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

  const events = (from: number, count: number, committedMsAgo = 0) =>
    Array.from({ length: count }, (_, i) => {
      const event = makeEvent({ key: { id: from + i }, after: { id: from + i }, version: makeVersion(BigInt(from + i), 0) });
      event.source.ts_ms -= committedMsAgo;
      return event;
    });

  function managedSink(log: ChangeLog, metrics: Metrics): ManagedSink {
    HeldSink.hold = null;
    HeldSink.holdLive = null;
    HeldSink.promoted = 0;
    HeldSink.applied = new Map();
    return new ManagedSink({
      name: 'cache', createSink: () => new HeldSink(), log, metrics, logger: createLogger('test', () => undefined),
      state: new JsonStateFile<SinkGenerationState>(join(stateDir, 'cache.json')), pollMs: 20,
    });
  }

  it('follows the rebuilt generation once the old one has stopped (the stopped runner\'s last figure would stand still)', async () => {
    const log = await openLog(2);
    const metrics = new Metrics();
    const managed = managedSink(log, metrics);
    let releasePromote = () => undefined as void;
    HeldSink.promoteHold = new Promise<void>((resolve) => (releasePromote = resolve));
    const controller = new AbortController();
    const running = managed.run(controller.signal);
    let release = () => undefined as void;
    try {
      await log.append(events(1, 200));
      await until('the live generation to apply 200 events', async () => (await gauge(metrics, 'cdc_sink_lag_events')) === 0 && (await log.endOffsets()).reduce((a, b) => a + b, 0) === 200);

      await managed.reprocess();
      await until('the promoting phase', async () => (await managed.status()).reprocess !== undefined
        && ((await managed.status()).reprocess as { phase?: string }).phase === 'promoting');
      // The old runner is gone; the new one cannot write: 300 events arrive that nobody applies.
      HeldSink.hold = new Promise<void>((resolve) => (release = resolve));
      await log.append(events(1000, 300));
      await until('the lag to show the 300 events not yet applied', async () => ((await gauge(metrics, 'cdc_sink_lag_events')) ?? 0) >= 300, 5_000);
      assert.ok(((await gauge(metrics, 'cdc_sink_lag_seconds')) ?? 0) > 0, 'lag in seconds above 0 while events wait');

      release();
      HeldSink.hold = null;
      releasePromote();
      await until('the promotion and a lag of 0', async () => HeldSink.promoted === 1 && (await gauge(metrics, 'cdc_sink_lag_events')) === 0);
    } finally {
      release();
      releasePromote();
      controller.abort();
      await running;
    }
  });

  it('holds a rebuild\'s batches while the live generation lags more than 5 s, at most 2 s each', async () => {
    const log = await openLog(2);
    const metrics = new Metrics();
    const managed = managedSink(log, metrics);
    const controller = new AbortController();
    const running = managed.run(controller.signal);
    let releaseLive = () => undefined as void;
    try {
      // Committed a minute ago: once the live generation stops applying, its lag reads about a minute.
      await log.append(events(1, 200, 60_000));
      await until('the live generation to apply 200 events', () => HeldSink.applied.get(1) === 200);
      HeldSink.holdLive = new Promise<void>((resolve) => (releaseLive = resolve));
      await log.append(events(1000, 100, 60_000));
      await until('the live lag to pass 5 s', async () => ((await gauge(metrics, 'cdc_sink_lag_seconds')) ?? 0) > 5, 5_000);

      const asked = Date.now();
      await managed.reprocess();
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(HeldSink.applied.get(2) ?? 0, 0, 'the rebuild waits while the live generation lags');
      assert.equal(((await managed.status()).reprocess as { yieldingToLive?: boolean }).yieldingToLive, true, 'cdc status says why the rebuild is slow');
      await until('the rebuild to move on anyway (bounded wait)', () => (HeldSink.applied.get(2) ?? 0) > 0, 5_000);
      const waitedMs = Date.now() - asked;
      assert.ok(waitedMs >= 1900 && waitedMs < 4500, `a batch waits about 2 s at most (waited ${waitedMs} ms)`);

      releaseLive();
      HeldSink.holdLive = null;
      await until('the live generation and then the rebuild to catch up', () => HeldSink.applied.get(1) === 300 && HeldSink.promoted === 1);
    } finally {
      releaseLive();
      controller.abort();
      await running;
    }
  });
});
