import { strict as assert } from 'node:assert';
import { crc32 } from 'node:zlib';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChangeEvent } from '../../core/event/change-event';
import { makeVersion } from '../../core/event/version';
import { LogRecord } from '../../core/log/change-log';
import { FileLog, FileLogOptions } from '../../core/log/file-log';
import { compactionKeyOf } from '../../core/log/log-keys';
import { Segment } from '../../core/log/segment';
import { makeEvent } from '../support/events';

describe('FileLog segments, index, durability and compaction', () => {
  let dirs: string[] = [];
  let logs: FileLog[] = [];
  let version = 0;
  const v = () => makeVersion(BigInt(++version), 1);

  afterEach(async () => {
    await Promise.allSettled(logs.map((l) => l.close()));
    await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true })));
    [dirs, logs] = [[], []];
  });

  async function tempDir(): Promise<string> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'file-log-seg-'));
    dirs.push(dir);
    return dir;
  }

  async function openLog(dir: string, options: Partial<FileLogOptions> = {}): Promise<FileLog> {
    const log = new FileLog({ dir, partitions: 1, segmentBytes: 16 * 1024, indexIntervalBytes: 1024, compaction: { enabled: false }, ...options });
    await log.open();
    logs.push(log);
    return log;
  }

  async function readAll(log: FileLog, partition = 0): Promise<LogRecord[]> {
    const out: LogRecord[] = [];
    for (let offset = 0; ; ) {
      const { records, nextOffset } = await log.readBatch(partition, offset, 1000);
      out.push(...records);
      if (nextOffset === offset) return out;
      offset = nextOffset;
    }
  }

  const row = (id: number, n: number, op: 'c' | 'u' | 'd' = 'u'): ChangeEvent =>
    makeEvent({ key: { id }, op, after: op === 'd' ? null : { id, n, pad: 'p'.repeat(150) }, version: v() });

  const segmentFiles = async (dir: string) => (await fs.readdir(path.join(dir, 'partitions', '0'))).sort();

  it('rolls segments, indexes them, and reads any offset across segments before and after reopening', async () => {
    const dir = await tempDir();
    const log = await openLog(dir);
    const events = Array.from({ length: 600 }, (_, i) => row(i, i));
    for (let i = 0; i < events.length; i += 50) await log.append(events.slice(i, i + 50));
    const files = await segmentFiles(dir);
    const logs = files.filter((f) => f.endsWith('.log'));
    assert.ok(logs.length >= 5, `expected several segments, got ${files.join(' ')}`);
    assert.equal(files.filter((f) => f.endsWith('.index')).length, logs.length - 1, 'every sealed segment has an index');
    const check = async (l: FileLog) => {
      for (const offset of [0, 1, 99, 100, 101, 333, 598, 599, 600]) {
        const got = await l.read(0, offset, 7);
        assert.deepEqual(got.map((r) => r.offset), events.slice(offset, offset + 7).map((_, i) => offset + i), `offset ${offset}`);
        assert.deepEqual(got.map((r) => r.event), events.slice(offset, offset + 7));
      }
    };
    await check(log);
    await log.close();
    // A missing index is rebuilt by scanning; a stale one (wrong size) too.
    await fs.rm(path.join(dir, 'partitions', '0', logs[1].replace('.log', '.index')));
    await fs.appendFile(path.join(dir, 'partitions', '0', logs[2].replace('.log', '.index')), Buffer.alloc(8));
    const reopened = await openLog(dir);
    assert.deepEqual(await reopened.endOffsets(), [600]);
    await check(reopened);
    assert.equal((await segmentFiles(dir)).filter((f) => f.endsWith('.index')).length, logs.length - 1);
  });

  it('syncs once per append with fsync: always, shares syncs with group, and never syncs with none', async () => {
    const syncs = async (fsync: 'always' | 'group' | 'none') => {
      const log = await openLog(await tempDir(), { durability: { fsync } });
      let count = 0;
      const original = Segment.prototype.sync;
      Segment.prototype.sync = function () {
        count += 1;
        return original.call(this);
      };
      try {
        await Promise.all(Array.from({ length: 20 }, (_, i) => log.append([row(i, i)])));
      } finally {
        Segment.prototype.sync = original;
      }
      assert.equal((await readAll(log)).length, 20, `${fsync}: every append is readable`);
      return count;
    };
    assert.equal(await syncs('always'), 20);
    const grouped = await syncs('group');
    assert.ok(grouped >= 1 && grouped < 20, `group: ${grouped} syncs`);
    assert.equal(await syncs('none'), 0);
  });

  it('compacts in the background of appends and reads: latest per key, stable offsets, nothing lost', async () => {
    const dir = await tempDir();
    const log = await openLog(dir);
    const latest = new Map<number, number>();
    let appending = true;
    const writer = (async () => {
      for (let n = 0; appending || n < 30; n++) {
        await log.append(Array.from({ length: 20 }, (_, id) => row(id, n)));
        for (let id = 0; id < 20; id++) latest.set(id, n);
      }
    })();
    const seen: LogRecord[] = [];
    const reader = (async () => {
      for (let offset = 0; appending || offset < (await log.endOffsets())[0]; ) {
        const { records, nextOffset } = await log.readBatch(0, offset, 37);
        seen.push(...records);
        offset = nextOffset;
        if (records.length === 0) await new Promise((r) => setTimeout(r, 2));
      }
    })();
    for (let pass = 0; pass < 5; pass++) {
      await new Promise((r) => setTimeout(r, 30));
      await log.compact();
    }
    appending = false;
    await Promise.all([writer, reader]);
    await log.compact();
    assert.ok(seen.every((r, i) => i === 0 || r.offset > seen[i - 1].offset), 'a reader during compaction sees growing offsets');
    const after = await readAll(log);
    const state = new Map(after.map((r) => [r.event.key.id as number, (r.event.after as { n: number }).n]));
    assert.deepEqual(state, latest, 'a replay from zero ends at the latest version of every row');
    const total = (await log.endOffsets())[0];
    assert.ok(after.length < total / 2, `compaction kept ${after.length} of ${total} records`);
    const byOffset = new Map(seen.map((r) => [r.offset, r.event]));
    for (const r of after) if (byOffset.has(r.offset)) assert.deepEqual(r.event, byOffset.get(r.offset), `offset ${r.offset} kept its record`);
  });

  it('compacts segments holding megabytes of kept frames and frames bigger than its buffers, byte for byte', async () => {
    const dir = await tempDir();
    const log = await openLog(dir, { segmentBytes: 3 * 1024 * 1024 });
    const latest = new Map<number, ChangeEvent>();
    const big = (id: number, n: number) => makeEvent({ key: { id }, after: { id, n, blob: `${n}`.repeat(1_500_000 / String(n).length) }, version: v() });
    // Round 1 writes 2,000 rows of ~1 KB, later rounds update half of them: the first segment keeps ~1.1 MB,
    // more than the pass's 1 MB write buffer; rows of 1.5 MB are bigger than it and than a read chunk.
    for (let n = 1; n <= 4; n++) {
      const rows = n === 1 ? 2000 : 1000;
      const events = Array.from({ length: rows }, (_, id) => makeEvent({ key: { id }, after: { id, n, pad: `${n}`.repeat(1000) }, version: v() }));
      events.push(big(100_000 + (n % 2), n));
      await log.append(events);
      for (const e of events) latest.set(e.key.id as number, e);
    }
    await log.append([makeEvent({ key: { id: -1 }, after: { id: -1 }, version: v() })]); // seals the last round's segment
    const stats = await log.compact();
    const after = await readAll(log);
    assert.ok(stats.recordsRemoved > 0, 'compaction removed the older rounds');
    assert.equal(after.length, (await log.endOffsets())[0] - stats.recordsRemoved, 'every record compaction kept reads back whole');
    const state = new Map(after.filter((r) => r.event.key.id !== -1).map((r) => [r.event.key.id as number, r.event]));
    assert.equal(state.size, latest.size);
    for (const [id, event] of latest) assert.deepEqual(state.get(id)?.after, event.after, `row ${id}: its latest image, whole`);
  });

  it('keeps deletes and truncates as tombstones for the retention time and while a consumer is behind', async () => {
    const dir = await tempDir();
    const events = [
      ...Array.from({ length: 40 }, (_, id) => row(id, 0, 'c')),
      row(1, 1, 'd'),
      makeEvent({ table: 'orders', key: { id: 7 }, after: { id: 7 }, version: v() }),
      makeEvent({ table: 'orders', op: 't', version: v() }),
    ];
    const filler = Array.from({ length: 200 }, (_, i) => makeEvent({ table: 'other', key: { id: i }, after: { pad: 'f'.repeat(200) }, version: v() }));
    const fill = async (log: FileLog) => {
      for (let i = 0; i < filler.length; i += 20) await log.append(filler.slice(i, i + 20)); // seals the segments holding the records under test
    };
    const keys = (records: LogRecord[]) => records.filter((r) => r.event.source.table !== 'other').map((r) => `${r.event.op}:${compactionKeyOf(r.event)}`);

    const kept = await openLog(dir, { compaction: { enabled: false, tombstoneRetentionMs: 3600_000 } });
    await kept.append(events);
    await fill(kept);
    await kept.compact();
    const within = keys(await readAll(kept));
    assert.ok(within.includes(`d:${compactionKeyOf(events[40])}`), 'the delete stays within retention');
    assert.ok(within.includes('t:["public","orders"]'), 'the truncate stays within retention');
    assert.ok(!within.includes(`c:${compactionKeyOf(events[1])}`), 'the deleted row\'s insert is gone');
    assert.ok(!within.includes(`c:${compactionKeyOf(events[41])}`), 'the truncated table\'s older row is gone');
    await kept.commit('slow-sink', 0, 10);
    await kept.close();

    const expiring = await openLog(dir, { compaction: { enabled: false, tombstoneRetentionMs: 0 } });
    await expiring.compact();
    assert.ok(keys(await readAll(expiring)).some((k) => k.startsWith('d:')), 'a consumer at offset 10 still needs the delete');
    await expiring.commit('slow-sink', 0, (await expiring.endOffsets())[0]);
    await expiring.compact();
    const expired = keys(await readAll(expiring));
    assert.ok(!expired.some((k) => k.startsWith('d:') || k.startsWith('t:')), `tombstones expired: ${expired.filter((k) => !k.startsWith('u:') && !k.startsWith('c:')).join(' ')}`);
    assert.equal(expired.length, 39, 'the 39 live rows remain');
  });

  it('finishes a committed segment swap and drops an uncommitted one after a crash', async () => {
    const dir = await tempDir();
    const log = await openLog(dir);
    for (let n = 0; n < 8; n++) await log.append(Array.from({ length: 20 }, (_, id) => row(id, n)));
    const before = await readAll(log);
    await log.close();
    const partDir = path.join(dir, 'partitions', '0');
    const segments = (await segmentFiles(dir)).filter((f) => f.endsWith('.log'));
    // Crash after the commit point: the swap copy (here: the first segment unchanged) replaces the first two segments.
    const [first, second] = segments;
    const end = Number(segments[2].slice(0, 20));
    const copy = Buffer.concat([await fs.readFile(path.join(partDir, first)), await fs.readFile(path.join(partDir, second))]);
    await fs.writeFile(path.join(partDir, `${first.slice(0, 20)}-${String(end).padStart(20, '0')}.swap`), copy);
    await fs.writeFile(path.join(partDir, `${segments[3].slice(0, 20)}.cleaned`), 'half a copy');
    const reopened = await openLog(dir);
    const files = await segmentFiles(dir);
    assert.ok(!files.some((f) => f.endsWith('.swap') || f.endsWith('.cleaned')), files.join(' '));
    assert.ok(!files.includes(second), 'the second segment was merged into the first');
    assert.deepEqual(await readAll(reopened), before);
  });

  it('upgrades a log written in format 1 (offsets implied by position)', async () => {
    const dir = await tempDir();
    const events = Array.from({ length: 30 }, (_, i) => row(i, i));
    const frames = events.map((e) => {
      const payload = Buffer.from(JSON.stringify(e));
      const header = Buffer.alloc(8);
      header.writeUInt32BE(payload.length, 0);
      header.writeUInt32BE(crc32(payload), 4);
      return Buffer.concat([header, payload]);
    });
    await fs.mkdir(path.join(dir, 'partitions', '0'), { recursive: true });
    await fs.writeFile(path.join(dir, 'partitions', '0', '00000000000000000000.log'), Buffer.concat([...frames, Buffer.from([0, 0, 1])]));
    await fs.writeFile(path.join(dir, 'meta.json'), JSON.stringify({ partitions: 1, format: 1 }));
    const log = await openLog(dir);
    assert.deepEqual((await readAll(log)).map((r) => [r.offset, r.event]), events.map((e, i) => [i, e]));
    assert.deepEqual(JSON.parse(await fs.readFile(path.join(dir, 'meta.json'), 'utf8')), { partitions: 1, format: 2 });
    await log.append([row(99, 99)]);
    assert.deepEqual(await log.endOffsets(), [31]);
  });
});
