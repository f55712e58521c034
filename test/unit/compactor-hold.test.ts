import { strict as assert } from 'node:assert';
import { Compactor } from '../../core/log/compactor';

/**
 * A rebuild registers its consumer at offset zero inside Compactor.holdWhile: a pass reads the
 * consumers' offsets once, at its start, so a pass overlapping the registration would remove
 * tombstones the rebuild still needs. These tests pin the hold's contract: work waits for a
 * running pass, and no pass (timer or compactNow) starts while any work is held.
 */
describe('Compactor holds: no pass overlaps a consumer registration', () => {
  const options = { enabled: true, intervalMs: 5, minDirtyRatio: 0.5, tombstoneRetentionMs: 0, maxKeysPerPass: 1000, segmentBytes: 1024 };
  const tick = (ms = 30) => new Promise((resolve) => setTimeout(resolve, ms));

  /** A compactor whose passes are seen (each reads the consumers' offsets first) and can be held open by a gate. */
  function compactorWithGate() {
    const events: string[] = [];
    let open: () => void = () => undefined;
    let gate: Promise<void> = Promise.resolve();
    const compactor = new Compactor([], options, async () => {
      events.push('pass reads offsets');
      await gate;
      events.push('pass ends');
      return [];
    }, undefined);
    return {
      compactor,
      events,
      close: () => {
        gate = new Promise<void>((resolve) => (open = resolve));
      },
      open: () => open(),
    };
  }

  it('runs held work only after the pass in progress ends', async () => {
    const c = compactorWithGate();
    c.close();
    const pass = c.compactor.compactNow();
    await tick();
    const held = c.compactor.holdWhile(async () => {
      c.events.push('consumer registered');
    });
    await tick();
    assert.deepEqual(c.events, ['pass reads offsets'], 'the registration waits while the pass runs');
    c.open();
    await Promise.all([pass, held]);
    assert.deepEqual(c.events, ['pass reads offsets', 'pass ends', 'consumer registered']);
  });

  it('starts no timer pass and no compactNow pass while work is held', async () => {
    const c = compactorWithGate();
    c.compactor.start();
    try {
      let release: () => void = () => undefined;
      const held = c.compactor.holdWhile(async () => {
        c.events.length = 0; // passes that ended before the hold are not under test
        c.events.push('held');
        await new Promise<void>((resolve) => (release = resolve));
        c.events.push('released');
      });
      await tick();
      const now = c.compactor.compactNow();
      await tick(60); // a dozen timer intervals
      assert.deepEqual(c.events, ['held'], `no pass may read offsets during the hold: ${c.events.join(', ')}`);
      release();
      await Promise.all([held, now]);
      assert.deepEqual(c.events.slice(0, 4), ['held', 'released', 'pass reads offsets', 'pass ends'], 'compactNow runs once the hold ends');
    } finally {
      await c.compactor.stop();
    }
  });

  it('a background pass gives way to held work between segments, and a later pass maps the rest again', async () => {
    const events: string[] = [];
    let open: () => void = () => undefined;
    let gate = new Promise<void>((resolve) => (open = resolve));
    // Two partitions of one sealed segment each (no frames: nothing to rewrite); reading partition 0's segment waits on the gate.
    const partition = (n: number) => ({
      partition: n,
      dir: `/nonexistent/${n}`,
      activeBase: 10,
      sealedSegments: () => [{
        base: 0,
        size: 100,
        forEachFrame: async () => {
          events.push(`read p${n}`);
          if (n === 0) await gate;
        },
      }],
    });
    const compactor = new Compactor([partition(0), partition(1)] as never, options, async () => [], undefined);
    compactor.start();
    try {
      await tick(); // the timer's pass is reading partition 0
      assert.deepEqual(events, ['read p0']);
      const held = compactor.holdWhile(async () => {
        events.push('held work');
      });
      open();
      await held;
      assert.deepEqual(events, ['read p0', 'held work'], 'the pass stopped after the segment it was reading, before partition 1');
      await tick(60);
      assert.ok(events.filter((e) => e === 'read p1').length >= 1, `a later pass reaches partition 1: ${events.join(', ')}`);
      assert.ok(events.filter((e) => e === 'read p0').length >= 2, 'and maps partition 0 again (its dirty mark was left as it was)');
    } finally {
      gate = Promise.resolve();
      open();
      await compactor.stop();
    }
  });
});
