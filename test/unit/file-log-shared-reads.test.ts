import { strict as assert } from 'node:assert';
import { ChangeEvent } from '../../core/event/change-event';
import { LogRecord } from '../../core/log/change-log';
import { FileLog } from '../../core/log/file-log';
import { makeEvent } from '../support/events';
import { tempFileLogs } from '../support/temp-file-logs';

// The log's consumers (one per sink) share the batches they read: one decode per record instead of one per sink.
// Each consumer must still get every record once, in order, from its own offset, whatever the others do.
describe('FileLog: consumers share the batches they read', () => {
  const openLog = tempFileLogs('file-log-shared-');

  const row = (id: number, pad = 20): ChangeEvent => makeEvent({ key: { id }, after: { id, pad: 'p'.repeat(pad), n: id * 3 } });

  /** Consumes until `total` records arrived (per partition, from `from`); returns them per partition. */
  function consumeAll(log: FileLog, consumer: string, total: number, options: { maxBatch?: number; from?: number[]; slowMs?: number } = {}) {
    const got: LogRecord[][] = Array.from({ length: log.partitions }, () => []);
    const stop = new AbortController();
    let count = 0;
    let largestBatch = 0;
    const done = log.consume({
      consumer,
      signal: stop.signal,
      maxBatch: options.maxBatch,
      startOffsets: async () => (options.from ? new Map(options.from.map((o, p) => [p, o])) : null),
      handle: async (batch) => {
        got[batch.partition].push(...batch.records);
        largestBatch = Math.max(largestBatch, batch.records.length);
        count += batch.records.length;
        if (options.slowMs) await new Promise((r) => setTimeout(r, options.slowMs));
        if (count >= total) stop.abort();
      },
    });
    return { got, done, stop, largestBatch: () => largestBatch };
  }

  it('hands three consumers every record once and in order, decoding most of them once for all three', async () => {
    const log = await openLog(2);
    let next = 0;
    const append = (n: number) => log.append(Array.from({ length: n }, () => row(next++)));
    await append(3000); // a backlog, then appends while the consumers read
    const total = 9000;
    const consumers = ['cache', 'search', 'warehouse'].map((name, i) => consumeAll(log, name, total, { maxBatch: [1000, 700, 1000][i] }));
    for (let i = 0; i < 20; i++) {
      await append(300);
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(consumers.map((c) => c.done));
    const reference = await readEverything(log);
    assert.equal(reference.length, total);
    let sharedDecodes = 0;
    consumers.forEach((c, i) => assert.ok(c.largestBatch() <= [1000, 700, 1000][i], `batches of at most maxBatch (${c.largestBatch()})`));
    for (const { got } of consumers) {
      const flat = got.flat();
      assert.equal(flat.length, total, 'every record once');
      for (const records of got) {
        for (let i = 1; i < records.length; i++) assert.ok(records[i].offset > records[i - 1].offset, 'in offset order');
      }
      assert.deepEqual(
        flat.map(place).sort(byPlace),
        reference.map(place).sort(byPlace),
      );
    }
    // The same decoded object reached two consumers: it was decoded once.
    const first = new Map(consumers[0].got.flat().map((r) => [`${r.partition}:${r.offset}`, r.event]));
    for (const r of consumers[1].got.flat()) if (first.get(`${r.partition}:${r.offset}`) === r.event) sharedDecodes++;
    assert.ok(sharedDecodes > total / 2, `most records decoded once for both consumers (shared: ${sharedDecodes} of ${total})`);
  });

  it('gives a consumer that starts inside another one\'s batch the rest of it, then the same batches', async () => {
    const log = await openLog(1);
    await log.append(Array.from({ length: 2500 }, (_, i) => row(i)));
    const ahead = await consumeAll(log, 'ahead', 2500, { maxBatch: 1000, slowMs: 20 });
    const behind = await consumeAll(log, 'behind', 2500 - 350, { maxBatch: 1000, from: [350] });
    await Promise.all([ahead.done, behind.done]);
    assert.deepEqual(behind.got[0].map((r) => r.offset), Array.from({ length: 2150 }, (_, i) => 350 + i));
    assert.deepEqual(behind.got[0].map((r) => r.event.key.id), Array.from({ length: 2150 }, (_, i) => 350 + i));
    assert.deepEqual(ahead.got[0].map((r) => r.offset), Array.from({ length: 2500 }, (_, i) => i));
    const aheadEvents = new Set(ahead.got[0].map((r) => r.event));
    const shared = behind.got[0].filter((r) => aheadEvents.has(r.event)).length;
    assert.ok(shared >= 1000, `the two read in step once one had joined the other's batch (shared: ${shared} of 2150)`);
  });

  it('with CDC_FREEZE_RECORDS=1 (as the tests run), freezes what consumers read, so a sink cannot change a record under another', async () => {
    const was = process.env.CDC_FREEZE_RECORDS;
    process.env.CDC_FREEZE_RECORDS = '1';
    try {
      await frozenReads();
    } finally {
      if (was === undefined) delete process.env.CDC_FREEZE_RECORDS;
      else process.env.CDC_FREEZE_RECORDS = was;
    }
  });

  async function frozenReads(): Promise<void> {
    const log = await openLog(1);
    await log.append([row(1), makeEvent({ key: { id: 2 }, op: 'd' })]);
    const stop = new AbortController();
    const errors: string[] = [];
    await log.consume({
      consumer: 'only',
      signal: stop.signal,
      handle: async ({ records }) => {
        const [record, deleted] = records;
        for (const change of [() => ((record.event.after as Record<string, unknown>).pad = 'x'), () => (record.event.source.table = 'other'), () => (record.event.op = 'u'),
          () => (record.event.key.id = 9), () => ((deleted as { offset: number }).offset = 7)]) {
          try {
            change();
            errors.push('changed');
          } catch (error) {
            errors.push((error as Error).constructor.name);
          }
        }
        stop.abort();
      },
    });
    assert.deepEqual(errors, Array(5).fill('TypeError'));
    const [again] = await log.read(0, 0, 1);
    assert.equal((again.event.after as { pad: string }).pad, 'p'.repeat(20));
  }

  it('does not share batches of a megabyte or more, and still hands them over whole', async () => {
    const log = await openLog(1);
    const big = Array.from({ length: 12 }, (_, i) => row(i, 200_000)); // ~2.4 MB: read in batches over the sharing bound
    await log.append(big);
    const a = await consumeAll(log, 'a', 12);
    const b = await consumeAll(log, 'b', 12);
    await Promise.all([a.done, b.done]);
    for (const c of [a, b]) assert.deepEqual(c.got[0].map((r) => r.event.key.id), big.map((e) => e.key.id));
    assert.notEqual(a.got[0][0].event, b.got[0][0].event, 'decoded by each consumer');
  });
});

async function readEverything(log: FileLog): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for (let p = 0; p < log.partitions; p++) {
    for (let from = 0, batch = await log.read(p, 0, 1000); batch.length > 0; batch = await log.read(p, from, 1000)) {
      out.push(...batch);
      from = batch[batch.length - 1].offset + 1;
    }
  }
  return out;
}

function place(r: LogRecord): number[] {
  return [r.partition, r.offset, Number(r.event.key.id), (r.event.after as { n: number }).n];
}

function byPlace(a: number[], b: number[]): number {
  return a[0] - b[0] || a[1] - b[1];
}
