import { strict as assert } from 'node:assert';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeVersion } from '../../core/event/version';
import { FileLog } from '../../core/log/file-log';
import { LogOffsetGoneError } from '../../core/log/offset-gone';
import { makeEvent } from '../support/events';

/** A sink never skips: a next offset the embedded log no longer holds stops consume() with an error saying what to do. */
describe('FileLog: a consumer offset the log no longer holds', () => {
  let dir: string;
  let log: FileLog | undefined;

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'file-log-gone-'));
  });
  afterEach(async () => {
    await log?.close();
    log = undefined;
    await fs.rm(dir, { recursive: true, force: true });
  });

  const open = async () => {
    log = new FileLog({ dir, partitions: 1, segmentBytes: 4096, compaction: { enabled: false } });
    await log.open();
    return log;
  };
  const rows = (from: number, count: number) =>
    Array.from({ length: count }, (_, i) => makeEvent({ key: { id: from + i }, after: { id: from + i, pad: 'x'.repeat(200) }, version: makeVersion(BigInt(from + i + 1), 1) }));

  async function consumeOnce(l: FileLog, consumer: string, startOffsets?: Map<number, number>): Promise<number[]> {
    const seen: number[] = [];
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 1000);
    try {
      await l.consume({
        consumer,
        signal: controller.signal,
        startOffsets: startOffsets ? async () => startOffsets : undefined,
        handle: async (batch) => void seen.push(...batch.records.map((r) => r.offset)),
      });
    } finally {
      clearTimeout(timer);
    }
    return seen;
  }

  it('refuses to resume below the first segment left after segments were deleted, naming partition, offsets and the command', async () => {
    let l = await open();
    for (let i = 0; i < 100; i += 10) await l.append(rows(i, 10));
    await l.commit('sink-cache', 0, 5);
    await l.close();
    const partitionDir = path.join(dir, 'partitions', '0');
    const segments = (await fs.readdir(partitionDir)).filter((f) => f.endsWith('.log')).sort();
    assert.ok(segments.length >= 3, `expected several segments, got ${segments.join(', ')}`);
    for (const file of segments.slice(0, 2)) {
      await fs.rm(path.join(partitionDir, file));
      await fs.rm(path.join(partitionDir, file.replace('.log', '.index')), { force: true });
    }
    const oldest = Number(segments[2].slice(0, 20));
    l = await open();
    await assert.rejects(consumeOnce(l, 'sink-cache'), (error: Error) => {
      assert.ok(error instanceof LogOffsetGoneError, `a LogOffsetGoneError, got ${error.stack}`);
      assert.match(error.message, new RegExp(`next offset 5 on partition 0 is no longer held: the oldest offset still held is ${oldest}`));
      assert.match(error.message, /cdc reprocess --sink cache/);
      return true;
    });
    // A consumer whose offset is still held reads on from there.
    await l.commit('sink-other', 0, oldest);
    const seen = await consumeOnce(l, 'sink-other');
    assert.equal(seen[0], oldest);
    assert.equal(seen.length, 100 - oldest);
  });

  it('refuses a stored sink offset past the end of the log (the log directory was replaced)', async () => {
    const l = await open();
    await l.append(rows(0, 10));
    await assert.rejects(consumeOnce(l, 'sink-warehouse-g2', new Map([[0, 500]])), (error: Error) => {
      assert.ok(error instanceof LogOffsetGoneError);
      assert.match(error.message, /next offset 500 on partition 0 is past the end of the log \(10\)/);
      assert.match(error.message, /cdc reprocess --sink warehouse/);
      return true;
    });
  });
});
