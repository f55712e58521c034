import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const RECORD_BYTES = 50 * 1000 * 1000;
const RSS_LIMIT_BYTES = 300 * 1024 * 1024;

/**
 * The child: appends rows with 50 MB values to a file log while a consumer
 * reads them back through consume() at the same time, then
 * prints its peak RSS. Run in a child so the test runner's own memory does not count.
 */
const childScript = (dir: string) => `
  const { FileLog } = require(${JSON.stringify(require.resolve('../../core/log/file-log'))});
  const { makeEvent } = require(${JSON.stringify(require.resolve('../support/events'))});
  const { makeVersion } = require(${JSON.stringify(require.resolve('../../core/event/version'))});
  const row = (id) => makeEvent({ key: { id }, after: { id, blob: String.fromCharCode(97 + id).repeat(${RECORD_BYTES}) }, version: makeVersion(BigInt(id + 1), 1) });
  (async () => {
    const log = new FileLog({ dir: ${JSON.stringify(dir)}, partitions: 4, compaction: { enabled: false } });
    await log.open();
    const seen = [];
    const controller = new AbortController();
    const consuming = log.consume({
      consumer: 'sink-big',
      signal: controller.signal,
      handle: async (batch) => {
        for (const r of batch.records) {
          const blob = r.event.after.blob;
          if (blob.length !== ${RECORD_BYTES} || blob[0] !== String.fromCharCode(97 + r.event.key.id) || blob[blob.length - 1] !== blob[0]) throw new Error('record ' + r.event.key.id + ' came back wrong');
          seen.push(r.event.key.id);
        }
        if (seen.length === 4) controller.abort();
      },
    });
    // One row per append, as a source hands them over (each row decoded on its own); rows 0-3 land in partitions 1, 3, 1, 3.
    for (let id = 0; id < 4; id++) await log.append([row(id)]);
    await consuming;
    await log.close();
    console.log(JSON.stringify({ seen: seen.sort(), maxRssBytes: process.resourceUsage().maxRSS * 1024 }));
  })().catch((e) => { console.error(e.stack); process.exit(1); });
`;

describe('embedded log: rows with 50 MB values', function () {
  this.timeout(180_000);

  it('appends and consumes four 50 MB records with peak RSS under 300 MB', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'log-big-'));
    try {
      const child = spawnSync(process.execPath, ['-e', childScript(path.join(dir, 'log'))], { encoding: 'utf8', timeout: 170_000 });
      assert.equal(child.status, 0, `the child failed: ${child.stderr}`);
      const result = JSON.parse(child.stdout.trim().split('\n').pop()!) as { seen: number[]; maxRssBytes: number };
      console.log(`      peak RSS ${(result.maxRssBytes / 1024 / 1024).toFixed(0)} MiB for 4 records of ${RECORD_BYTES / 1e6} MB (limit ${RSS_LIMIT_BYTES / 1024 / 1024} MiB)`);
      assert.deepEqual(result.seen, [0, 1, 2, 3], 'every record read back whole, once');
      assert.ok(result.maxRssBytes < RSS_LIMIT_BYTES, `peak RSS ${result.maxRssBytes} bytes is over ${RSS_LIMIT_BYTES}`);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
