import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMMIT_LINGER_MS, ConsumerOffsets } from '../../core/log/consumer-offsets';

describe('file log consumer offsets', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'consumer-offsets-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const onDisk = (consumer: string) => (JSON.parse(readFileSync(join(dir, `${consumer}.json`), 'utf8')) as { offsets: number[] }).offsets;

  it('makes every one of many concurrent commits durable, the last per partition winning', async () => {
    const offsets = new ConsumerOffsets(dir, 4);
    const commits: Promise<void>[] = [];
    for (let round = 1; round <= 50; round++) for (let p = 0; p < 4; p++) commits.push(offsets.set('sink-cache', p, round * 10 + p));
    // Each commit resolves only once a file holding it (or a later offset) is durable.
    await Promise.all(commits.map((commit, i) => commit.then(() => {
      const p = i % 4;
      assert.ok(onDisk('sink-cache')[p] >= (Math.floor(i / 4) + 1) * 10 + p, `commit ${i} resolved before it reached the file`);
    })));
    assert.deepEqual(onDisk('sink-cache'), [500, 501, 502, 503]);
    assert.deepEqual(await new ConsumerOffsets(dir, 4).get('sink-cache'), [500, 501, 502, 503]);
  });

  it('lets commits arriving within COMMIT_LINGER_MS share one file write', async () => {
    const offsets = new ConsumerOffsets(dir, 2);
    const commits: Promise<void>[] = [];
    const started = Date.now();
    // A trickle: a commit every 5 ms (or as often as a loaded machine's timers allow), at least 40 over at least
    // 4 lingers, as a sink applying one small transaction at a time makes them.
    for (let i = 1; i <= 40 || Date.now() - started < 4 * COMMIT_LINGER_MS; i++) {
      commits.push(offsets.set('sink-cache', i % 2, i));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const lingers = Math.ceil((Date.now() - started) / COMMIT_LINGER_MS);
    await Promise.all(commits);
    assert.ok(offsets.writes <= lingers + 1, `${commits.length} commits over ${lingers} lingers took ${offsets.writes} file writes`);
    const last = commits.length;
    assert.deepEqual(await new ConsumerOffsets(dir, 2).get('sink-cache'), last % 2 === 0 ? [last, last - 1] : [last - 1, last]);
  });

  it('keeps consumers apart and rejects the commits of a failed write, keeping the last durable view', async () => {
    const offsets = new ConsumerOffsets(dir, 2);
    await Promise.all([offsets.set('a', 0, 7), offsets.set('b', 1, 9)]);
    assert.deepEqual(await offsets.get('a'), [7, 0]);
    assert.deepEqual(await offsets.get('b'), [0, 9]);
    rmSync(dir, { recursive: true, force: true }); // the next write cannot create its temp file
    const failing = [offsets.set('a', 0, 8), offsets.set('a', 1, 3)];
    for (const commit of failing) await assert.rejects(commit, /ENOENT/);
    assert.deepEqual(await offsets.get('a'), [7, 0]);
  });
});
