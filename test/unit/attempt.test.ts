import { strict as assert } from 'node:assert';
import { Attempt } from '../../core/runtime/attempt';

describe('Attempt', () => {
  it('ends with its first failure even when the body never settles, and says what it abandoned', async () => {
    const outer = new AbortController();
    const told: string[] = [];
    const attempt = new Attempt(outer.signal, { stopGraceMs: 100, onAbandoned: (what) => told.push(what) });
    setTimeout(() => attempt.fail(new Error('control connection lost')), 20);
    const startedAt = Date.now();
    await assert.rejects(attempt.run(() => new Promise<void>(() => undefined)), /control connection lost/);
    assert.ok(Date.now() - startedAt < 2_000, 'within the grace, not forever');
    assert.equal(told.length, 1);
    assert.match(told[0], /main loop did not stop within 0 s of the attempt ending \(control connection lost\): abandoned/);
  });

  it('abandons background work that outlives the attempt (a resync loop), after its grace', async () => {
    const attempt = new Attempt(new AbortController().signal, { stopGraceMs: 50, onAbandoned: () => undefined });
    await assert.rejects(attempt.run(async () => { throw new Error('stream lost'); }, () => new Promise<void>(() => undefined)), /stream lost/);
  });

  it('waits for a body that stops promptly, and abandons nothing', async () => {
    const told: string[] = [];
    const attempt = new Attempt(new AbortController().signal, { stopGraceMs: 1_000, onAbandoned: (what) => told.push(what) });
    setTimeout(() => attempt.fail(new Error('reset')), 10);
    await assert.rejects(attempt.run(() => new Promise<void>((resolve) => attempt.signal.addEventListener('abort', () => setTimeout(resolve, 30)))), /reset/);
    assert.deepEqual(told, []);
  });
});
