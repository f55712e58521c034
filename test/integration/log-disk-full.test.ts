import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChangeEvent } from '../../core/event/change-event';
import { makeVersion } from '../../core/event/version';
import { Metrics } from '../../core/http/metrics';
import { FileLog } from '../../core/log/file-log';
import { watchLogEnds } from '../../core/runtime/open-log';
import { makeEvent } from '../support/events';

/**
 * The embedded log on a small tmpfs filled to the brim: appends fail with an
 * error naming the directory and the free space, nothing unacknowledged is
 * kept, a torn partial write is cut, and appends succeed again by themselves
 * once the filler is removed.
 */
describe('embedded log on a full disk (8 MiB tmpfs)', function () {
  this.timeout(60_000);
  let mountPoint = '';
  let log: FileLog | undefined;

  before(function () {
    if (process.getuid?.() !== 0) {
      console.log('      skipped: mounting a tmpfs needs root');
      this.skip();
    }
  });
  beforeEach(async function () {
    mountPoint = await fs.mkdtemp(path.join(os.tmpdir(), 'log-disk-full-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mountPoint], { stdio: 'pipe' });
    } catch (error) {
      await fs.rm(mountPoint, { recursive: true, force: true });
      console.log(`      skipped: cannot mount a tmpfs here: ${(error as { stderr?: Buffer }).stderr?.toString().trim() || (error as Error).message}`);
      this.skip();
    }
  });
  afterEach(async () => {
    await log?.close().catch(() => undefined);
    log = undefined;
    if (mountPoint) {
      execFileSync('umount', [mountPoint], { stdio: 'pipe' });
      await fs.rm(mountPoint, { recursive: true, force: true });
    }
  });

  let nextId = 0;
  const batch = (count: number, padBytes: number): ChangeEvent[] =>
    Array.from({ length: count }, () => {
      const id = nextId++;
      return makeEvent({ key: { id }, after: { id, pad: 'x'.repeat(padBytes) }, version: makeVersion(BigInt(id + 1), 1) });
    });
  const idsOf = (events: ChangeEvent[]) => events.map((e) => e.key.id as number);

  /** Writes zeros to `file` until the file system is full; returns its size. */
  async function fillToTheBrim(file: string): Promise<number> {
    const fh = await fs.open(file, 'w');
    const chunk = Buffer.alloc(64 * 1024);
    let size = 0;
    try {
      for (let piece = chunk.length; piece >= 1; ) {
        try {
          const { bytesWritten } = await fh.write(chunk, 0, piece, size);
          size += bytesWritten;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
          piece = Math.floor(piece / 2);
        }
      }
    } finally {
      await fh.close();
    }
    return size;
  }

  async function readEverything(l: FileLog): Promise<number[]> {
    const ids: number[] = [];
    for (let p = 0; p < l.partitions; p++) {
      for (let offset = 0; ; ) {
        const { records, nextOffset } = await l.readBatch(p, offset, 1000);
        ids.push(...records.map((r) => r.event.key.id as number));
        if (nextOffset === offset) break;
        offset = nextOffset;
      }
    }
    return ids.sort((a, b) => a - b);
  }

  it('fails appends naming the directory and free space, cuts torn writes, and recovers once space is back', async () => {
    const dir = path.join(mountPoint, 'log');
    log = new FileLog({ dir, partitions: 2, segmentBytes: 1024 * 1024, compaction: { enabled: false } });
    await log.open();
    const acknowledged: number[] = [];
    const append = async (events: ChangeEvent[]) => {
      await log!.append(events);
      acknowledged.push(...idsOf(events));
    };
    for (let i = 0; i < 10; i++) await append(batch(20, 2000));

    const filler = path.join(mountPoint, 'filler');
    const filled = await fillToTheBrim(filler);
    console.log(`      filler ${filled} bytes; free now ${await log.diskFreeBytes()} bytes`);
    // cdc_log_disk_free_bytes follows the file system.
    const metrics = new Metrics();
    const freeMetric = async () => {
      clearInterval(watchLogEnds(log!, metrics, 60_000)); // one immediate tick
      await new Promise((resolve) => setTimeout(resolve, 50));
      return (await metrics.registry.getSingleMetricAsString('cdc_log_disk_free_bytes')).match(/^cdc_log_disk_free_bytes (\d+)$/m)?.[1];
    };
    assert.equal(await freeMetric(), '0', 'cdc_log_disk_free_bytes reads 0 on the full disk');
    let failures = 0;
    for (let i = 0; i < 5; i++) {
      await assert.rejects(append(batch(20, 2000)), (error: Error) => {
        assert.ok(error.message.startsWith(`file-log: appending to ${dir} failed: ENOSPC`), error.message);
        assert.match(error.message, /\(\d+ bytes free on its file system\)\. Nothing of this append was acknowledged/);
        return true;
      });
      failures++;
    }
    // Room for part of the next batch only: its write tears midway and must be cut.
    await fs.truncate(filler, filled - 48 * 1024);
    await assert.rejects(append(batch(100, 2000)), /ENOSPC.*the partial write was cut back to the last complete record/s);
    failures++;
    // The cut gave the space back: a small append fits in it.
    await append(batch(4, 2000));

    await fs.rm(filler);
    assert.ok(Number(await freeMetric()) > 7 * 1024 * 1024, 'cdc_log_disk_free_bytes sees the space come back');
    for (let i = 0; i < 10; i++) await append(batch(20, 2000));
    console.log(`      ${failures} appends refused while full, ${acknowledged.length} records acknowledged`);

    assert.deepEqual(await readEverything(log), acknowledged, 'the open log holds exactly the acknowledged records');
    await log.close();
    log = new FileLog({ dir, partitions: 2, segmentBytes: 1024 * 1024, compaction: { enabled: false } });
    await log.open();
    assert.deepEqual(await readEverything(log), acknowledged, 'after reopening: every acknowledged record, once, none torn');
  });
});
