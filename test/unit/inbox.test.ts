import { strict as assert } from 'node:assert';
import { Inbox } from '../../connectors/postgres/inbox';

/** An inbox whose handler waits for the test to release each item; records pause/resume calls. */
function gatedInbox(high: number, low: number, highBytes: number) {
  const flow: string[] = [];
  const handled: number[] = [];
  let release: (() => void) | null = null;
  const inbox = new Inbox<number>(
    (item) => new Promise<void>((resolve) => (release = () => (handled.push(item), resolve()))),
    { pause: () => flow.push('pause'), resume: () => flow.push('resume'), onError: (error) => flow.push(`error ${error.message}`) },
    high,
    low,
    highBytes,
  );
  const step = async () => {
    const go = release;
    release = null;
    go?.();
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  return { inbox, flow, handled, step };
}

describe('Inbox (connectors/postgres/inbox.ts): backpressure by count and by bytes', () => {
  it('pauses the stream once the queued messages pass the byte bound, though few, and resumes below a quarter of it', async () => {
    const { inbox, flow, handled, step } = gatedInbox(5_000, 1_000, 1_000);
    inbox.push(1, 400); // taken by the handler at once
    inbox.push(2, 400);
    inbox.push(3, 400);
    assert.deepEqual(flow, []);
    inbox.push(4, 400); // 1,200 bytes queued behind the one being handled
    assert.deepEqual(flow, ['pause']);
    await step(); // 1 done, 2 taken: 800 queued
    await step(); // 2 done, 3 taken: 400 queued
    assert.deepEqual(flow, ['pause']);
    await step(); // 3 done (400 queued: still paused), 4 taken
    assert.deepEqual(flow, ['pause']);
    await step(); // 4 done, nothing queued
    assert.deepEqual(flow, ['pause', 'resume']);
    assert.deepEqual(handled, [1, 2, 3, 4]);
  });

  it('takes a message bigger than the bound alone, and counts messages whose size is unknown by number only', async () => {
    const { inbox, flow, handled, step } = gatedInbox(3, 1, 1_000);
    inbox.push(1, 50_000_000);
    inbox.push(2, 50_000_000); // queued behind the first: paused
    assert.deepEqual(flow, ['pause']);
    await step();
    await step();
    assert.deepEqual(flow, ['pause', 'resume']);
    for (let i = 3; i <= 7; i++) inbox.push(i); // no sizes: paused above 3 queued
    assert.deepEqual(flow, ['pause', 'resume', 'pause']);
    for (let i = 0; i < 6; i++) await step();
    assert.deepEqual(handled, [1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(flow, ['pause', 'resume', 'pause', 'resume']);
  });
});
