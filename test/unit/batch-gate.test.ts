import { strict as assert } from 'node:assert';
import { Sink } from '../../core/contracts/sink';
import { LogRecord } from '../../core/log/change-log';
import { BatchGate } from '../../core/runtime/managed-sink';

/** A sink whose writes wait until the test lets them finish, recording what happened in order. */
class HeldSink implements Sink {
  readonly name = 'held';
  readonly events: string[] = [];
  private releases: Array<() => void> = [];
  async open(): Promise<void> {}
  async close(): Promise<void> {}
  async write(batch: readonly LogRecord[]): Promise<void> {
    this.events.push(`write ${batch[0].offset}`);
    await new Promise<void>((resolve) => this.releases.push(resolve));
  }
  async flush(): Promise<void> {
    this.events.push('flush');
  }
  release(): void {
    this.releases.shift()?.();
  }
  generationNote(): string {
    return `${this.name} sees itself`;
  }
}

const batch = (offset: number) => [{ partition: 0, offset, event: {} } as unknown as LogRecord];
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('BatchGate (a dead-letter replay runs between the sink runner\'s batches)', () => {
  it('waits for the batch between write() and flush(), and holds the next batch until the exclusive work is done', async () => {
    const sink = new HeldSink();
    const gate = new BatchGate();
    const wrapped = gate.wrap(sink);
    const first = wrapped.write(batch(1)).then(() => wrapped.flush());
    await tick();
    const work = gate.exclusive(async () => {
      sink.events.push('replay');
      await tick();
      sink.events.push('replay done');
      return 7;
    }, 5_000, 'held');
    await tick();
    assert.deepEqual(sink.events, ['write 1'], 'the replay waits for the batch in flight');
    const second = wrapped.write(batch(2)).then(() => wrapped.flush());
    sink.release();
    await first;
    assert.equal(await work, 7);
    await tick();
    assert.deepEqual(sink.events, ['write 1', 'flush', 'replay', 'replay done', 'write 2'], 'the next batch waited for the replay');
    sink.release();
    await second;
    assert.equal((wrapped as HeldSink).generationNote(), 'held sees itself', 'other members pass through, bound to the sink');
    assert.ok(wrapped instanceof HeldSink);
  });

  it('gives up with a clear error when a batch does not finish in time, and lets batches go on', async () => {
    const sink = new HeldSink();
    const gate = new BatchGate();
    const wrapped = gate.wrap(sink);
    const stuck = wrapped.write(batch(1)).then(() => wrapped.flush());
    await tick();
    await assert.rejects(gate.exclusive(async () => 1, 50, 'held'), /sink held has been writing a batch for over 0 s: try again once cdc status shows it running/);
    sink.release();
    await stuck;
    const next = wrapped.write(batch(2)).then(() => wrapped.flush());
    await tick();
    sink.release();
    await next;
    assert.deepEqual(sink.events, ['write 1', 'flush', 'write 2', 'flush']);
  });

  it('counts a failed write as finished', async () => {
    const gate = new BatchGate();
    const failing = gate.wrap({ name: 'f', open: async () => undefined, close: async () => undefined, flush: async () => undefined, write: async () => Promise.reject(new Error('down')) });
    await assert.rejects(failing.write(batch(1)), /down/);
    assert.equal(await gate.exclusive(async () => 'ran', 50, 'f'), 'ran');
  });
});
