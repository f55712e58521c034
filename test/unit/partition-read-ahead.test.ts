import { strict as assert } from 'node:assert';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChangeEvent } from '../../core/event/change-event';
import { FileLog } from '../../core/log/file-log';
import { makeEvent } from '../support/events';

/**
 * The embedded log reads a partition's next batch while the sink applies the
 * current one (core/log/partition-consumer.ts, ReadAheads): whatever the
 * reads ahead do, every consumer must still see each record once, in order,
 * huge records included, and resume where it committed after a stop.
 */
describe('FileLog consumers reading ahead', () => {
  let dir: string;
  let log: FileLog;

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'read-ahead-test-'));
    log = new FileLog({ dir, partitions: 4 });
    await log.open();
  });

  afterEach(async () => {
    await log.close().catch(() => undefined);
    await fs.rm(dir, { recursive: true, force: true });
  });

  const rows = (from: number, n: number, payload = ''): ChangeEvent[] =>
    Array.from({ length: n }, (_, i) => makeEvent({ key: { id: from + i }, after: { id: from + i, payload } }));

  /** Consumes as `consumer` until every partition reached `ends` (or `stopAfter` batches), handling each batch slowly. */
  async function consumeUntil(consumer: string, ends: number[], stopAfter = Infinity): Promise<Map<number, number[]>> {
    const seen = new Map<number, number[]>(ends.map((_, p) => [p, []]));
    const controller = new AbortController();
    let batches = 0;
    await log.consume({
      consumer,
      signal: controller.signal,
      maxBatch: 100,
      async handle({ partition, records }) {
        await sleep(2); // a sink's write: the next batch is read meanwhile
        seen.get(partition)!.push(...records.map((r) => r.offset));
        if (++batches >= stopAfter) controller.abort(); // mid-way: this batch is not committed
        else if (ends.every((end, p) => lastOf(seen.get(p)!) + 1 >= end)) setTimeout(() => controller.abort(), 50); // after the last commits
      },
    });
    return seen;
  }

  const lastOf = (offsets: number[]) => (offsets.length ? offsets[offsets.length - 1] : -1);
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

  it('gives two concurrent consumers every record once and in order, a 2 MB record among small ones included', async () => {
    await log.append(rows(0, 3000));
    await log.append(rows(3000, 1, 'x'.repeat(2 << 20)));
    await log.append(rows(3001, 2000));
    const ends = await log.endOffsets();
    const [a, b] = await Promise.all([consumeUntil('sink-a', ends), consumeUntil('sink-b', ends)]);
    for (const seen of [a, b]) {
      for (const [partition, offsets] of seen) assert.deepEqual(offsets, range(0, ends[partition]), `partition ${partition}`);
    }
    assert.deepEqual(await log.committedOffsets('sink-a'), ends);
    assert.deepEqual(await log.committedOffsets('sink-b'), ends);
  });

  it('after a stop mid-way resumes at the committed offsets: nothing skipped, and reads ahead given back', async () => {
    await log.append(rows(0, 4000));
    const ends = await log.endOffsets();
    const first = await consumeUntil('sink-a', ends, 9);
    const committed = await log.committedOffsets('sink-a');
    for (const [partition, offsets] of first) assert.deepEqual(offsets, range(0, offsets.length), `partition ${partition} before the stop`);
    const rest = await consumeUntil('sink-a', ends);
    for (const [partition, offsets] of rest) {
      // At least once: a batch applied but not yet committed at the stop comes again, never a gap.
      assert.ok(offsets[0] <= committed[partition], `partition ${partition} resumed at ${offsets[0]}, committed ${committed[partition]}`);
      assert.deepEqual(offsets, range(offsets[0], ends[partition]), `partition ${partition} after the stop`);
    }
    // Every read ahead was given back: all of them can be taken again.
    for (let i = 0; i < log.readAheads.limit; i++) assert.ok(log.readAheads.take(), `read ahead ${i + 1} of ${log.readAheads.limit}`);
  });
});
