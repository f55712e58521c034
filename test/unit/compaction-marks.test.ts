import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Compactor } from '../../core/log/compactor';

/**
 * Where compaction left off is kept beside each partition's segments: a restarted
 * service does not map every partition again (after a kill -9 under load that first
 * pass read the whole log in the middle of the catch-up). A missing or unreadable
 * mark means "never compacted", which is always safe.
 */
describe('Compaction marks: a restart does not map compacted partitions again', () => {
  const options = { enabled: true, intervalMs: 5, minDirtyRatio: 0.5, tombstoneRetentionMs: 0, maxKeysPerPass: 1000, segmentBytes: 1024 };
  const tick = (ms = 60) => new Promise((resolve) => setTimeout(resolve, ms));
  let root: string;
  beforeEach(() => (root = mkdtempSync(join(tmpdir(), 'compaction-marks-'))));
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  /** Partitions of one sealed segment below offset 10 (no frames: nothing to rewrite); `reads` lists each segment walk. */
  function partitions(reads: string[]) {
    return [0, 1].map((n) => ({
      partition: n,
      dir: join(root, String(n)),
      activeBase: 10,
      sealedSegments: () => [{ base: 0, size: 100, forEachFrame: async () => void reads.push(`read p${n}`) }],
    }));
  }

  /**
   * Segment walks of background passes over `ms`, or until `enough` says so (a pass writes marks with
   * fsync, which can take tens of ms on a disk still flushing an earlier test's files).
   */
  async function backgroundReads(enough?: (reads: string[]) => boolean): Promise<string[]> {
    const reads: string[] = [];
    const compactor = new Compactor(partitions(reads) as never, options, async () => [], undefined);
    compactor.start();
    if (!enough) await tick();
    else for (const until = Date.now() + 5000; Date.now() < until && !enough(reads); ) await tick(10);
    await compactor.stop();
    return reads;
  }

  it('saves each partition\'s mark after a pass, and the next process starts from it', async () => {
    for (const n of [0, 1]) mkdirSync(join(root, String(n)));
    const first: string[] = [];
    await new Compactor(partitions(first) as never, options, async () => [], undefined).compactNow();
    assert.ok(first.includes('read p0') && first.includes('read p1'), 'the first pass maps both partitions');
    for (const n of [0, 1]) {
      assert.deepEqual(JSON.parse(readFileSync(join(root, String(n), 'compaction.json'), 'utf8')), { dirtyFrom: 10, tombstoneCheckAt: null });
    }
    assert.deepEqual(await backgroundReads(), [], 'after a restart nothing is due: the sealed bytes were all mapped before');
  });

  it('maps everything when the mark is missing or unreadable', async () => {
    for (const n of [0, 1]) mkdirSync(join(root, String(n)));
    writeFileSync(join(root, '0', 'compaction.json'), '{"dirtyFrom": "ten"');
    const reads = await backgroundReads((r) => r.includes('read p0') && r.includes('read p1'));
    assert.ok(reads.includes('read p0'), `a torn mark counts as none: ${reads.join(', ')}`);
    assert.ok(reads.includes('read p1'), `no mark: the partition is mapped from its start: ${reads.join(', ')}`);
  });

  it('walks a segment an earlier pass mapped once (to count what it keeps), not twice', async () => {
    mkdirSync(join(root, '0'));
    writeFileSync(join(root, '0', 'compaction.json'), JSON.stringify({ dirtyFrom: 10, tombstoneCheckAt: null }));
    const reads: string[] = [];
    const segment = (base: number) => ({ base, size: 100, forEachFrame: async () => void reads.push(`read ${base}`) });
    const partition = { partition: 0, dir: join(root, '0'), activeBase: 20, sealedSegments: () => [segment(0), segment(10)] };
    // segmentBytes -1: no two segments fit in one, so nothing is rewritten (the fake segments hold no frames).
    await new Compactor([partition] as never, { ...options, segmentBytes: -1 }, async () => [], undefined).compactNow();
    assert.deepEqual(reads.sort(), ['read 0', 'read 10', 'read 10'], 'offsets 0-9 were mapped before: only the count reads them');
  });
});
