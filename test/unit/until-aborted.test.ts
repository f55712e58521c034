import { strict as assert } from 'node:assert';
import { untilAborted } from '../../core/runtime/attempt';

describe('untilAborted (an await that ends with its attempt)', () => {
  it('passes on the value or the failure of work that settles first', async () => {
    const signal = new AbortController().signal;
    assert.equal(await untilAborted(Promise.resolve(7), signal), 7);
    await assert.rejects(untilAborted(Promise.reject(new Error('query failed')), signal), /query failed/);
  });

  it('rejects at once when the signal aborts, and hands a value that arrives late to onLate', async () => {
    const controller = new AbortController();
    let deliver!: (value: string) => void;
    const late: string[] = [];
    const waiting = untilAborted(new Promise<string>((resolve) => (deliver = resolve)), controller.signal, (value) => late.push(value));
    controller.abort(new Error('control connection lost'));
    await assert.rejects(waiting, (error: Error) => error.message === 'the attempt ended' && (error.cause as Error).message === 'control connection lost');
    deliver('a connection opened too late');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(late, ['a connection opened too late']);
  });

  it('rejects at once on a signal already aborted, and ignores the late failure of the work', async () => {
    const controller = new AbortController();
    controller.abort();
    let fail!: (error: Error) => void;
    const waiting = untilAborted(new Promise<void>((_, reject) => (fail = reject)), controller.signal);
    await assert.rejects(waiting, /the attempt ended/);
    fail(new Error('late')); // no unhandled rejection
    await new Promise((resolve) => setImmediate(resolve));
  });
});
