import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { getEventListeners } from 'node:events';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChangeEvent } from '../../core/event/change-event';
import { LogRecord } from '../../core/log/change-log';
import { FileLog } from '../../core/log/file-log';
import { Segment } from '../../core/log/segment';
import { partitionsOf } from '../../core/log/partitioner';
import { encodeRecord } from '../../core/log/record-codec';
import { makeEvent } from '../support/events';

describe('FileLog', () => {
  let dirs: string[] = [];
  let logs: FileLog[] = [];

  afterEach(async () => {
    await Promise.allSettled(logs.map((l) => l.close()));
    await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true })));
    [dirs, logs] = [[], []];
  });

  async function tempDir(): Promise<string> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'file-log-test-'));
    dirs.push(dir);
    return dir;
  }

  async function openLog(dir: string, partitions = 4): Promise<FileLog> {
    const log = new FileLog({ dir, partitions });
    await log.open();
    logs.push(log);
    return log;
  }

  async function readAll(log: FileLog, partition: number, from = 0): Promise<LogRecord[]> {
    const out: LogRecord[] = [];
    for (let batch = await log.read(partition, from, 1000); batch.length > 0; batch = await log.read(partition, from, 1000)) {
      out.push(...batch);
      from += batch.length;
    }
    return out;
  }

  /** Runs `fn` with console.error captured (recovery reports cuts there). */
  async function captureStderr<T>(fn: () => Promise<T>): Promise<{ result: T; lines: string[] }> {
    const lines: string[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => void lines.push(args.join(' '));
    try {
      return { result: await fn(), lines };
    } finally {
      console.error = original;
    }
  }

  const rows = (n: number, table = 'items'): ChangeEvent[] =>
    Array.from({ length: n }, (_, i) => makeEvent({ table, key: { id: i }, after: { id: i, n: i } }));

  it('keeps per-partition and per-row order across concurrent appends, truncates in every partition', async () => {
    const log = await openLog(await tempDir());
    const events: ChangeEvent[] = [];
    for (let i = 0; i < 900; i++) {
      const id = i % 40;
      events.push(makeEvent({ table: i % 3 ? 'items' : 'orders', key: { id }, op: i < 40 ? 'c' : 'u', after: { id, seq: i } }));
    }
    events.splice(450, 0, makeEvent({ table: 'items', op: 't' }));
    const chunks = Array.from({ length: 30 }, (_, c) => events.slice(c * 31, c * 31 + 31));
    await Promise.all(chunks.map((chunk) => log.append(chunk))); // not awaited one by one: must still keep call order
    const homes = new Map<string, Set<number>>();
    for (let p = 0; p < 4; p++) {
      const records = await readAll(log, p);
      assert.deepEqual(records.map((r) => r.event), events.filter((e) => partitionsOf(e, 4).includes(p)));
      assert.deepEqual(records.map((r) => r.offset), records.map((_, i) => i));
      for (const r of records.filter((r) => r.event.op !== 't')) {
        const row = `${r.event.source.table}:${JSON.stringify(r.event.key)}`;
        homes.set(row, (homes.get(row) ?? new Set()).add(p));
      }
      assert.equal(records.filter((r) => r.event.op === 't').length, 1);
    }
    for (const [row, partitions] of homes) assert.equal(partitions.size, 1, `row ${row} is in several partitions`);
    const ends = await log.endOffsets();
    assert.equal(ends.reduce((a, b) => a + b), 900 + 4);
  });

  it('reads exactly the right records from any offset, across sparse-index boundaries', async () => {
    const log = await openLog(await tempDir(), 1);
    const events = rows(700);
    await log.append(events.slice(0, 300));
    await log.append(events.slice(300));
    for (const offset of [0, 1, 255, 256, 257, 300, 511, 512, 513, 699, 700, 701, 10_000]) {
      for (const max of [1, 7, 1000]) {
        const got = await log.read(0, offset, max);
        const want = events.slice(offset, offset + max);
        assert.deepEqual(got.map((r) => r.event), want, `offset ${offset} max ${max}`);
        assert.deepEqual(got.map((r) => r.offset), want.map((_, i) => offset + i));
      }
    }
  });

  it('reads records larger than a read chunk and caps the bytes of one read', async () => {
    const log = await openLog(await tempDir(), 1);
    const sizes = [300_000, 300_000, 300_000, 300_000, 2_500_000, 10, 2_500_000, 10];
    const events = sizes.map((size, i) => makeEvent({ key: { id: i }, after: { id: i, blob: 'x'.repeat(size) } }));
    await log.append(events);
    const first = await log.read(0, 0, 1000);
    assert.ok(first.length > 0 && first.length < events.length, `one read returned ${first.length} records`);
    assert.deepEqual((await readAll(log, 0)).map((r) => r.event), events);
  });

  it('rejects bad arguments and use after close with clear errors', async () => {
    const log = await openLog(await tempDir());
    await assert.rejects(log.read(0, -1, 10), /partition 0 at offset -1/);
    await assert.rejects(log.read(4, 0, 10), /partition 4 does not exist.*0 to 3/);
    await assert.rejects(log.open(), /already opened/);
    await log.close();
    await assert.rejects(log.append(rows(1)), /is closed/);
    await assert.rejects(log.read(0, 0, 1), /is closed/);
  });

  it('keeps every record and the end offsets after reopening', async () => {
    const dir = await tempDir();
    const log = await openLog(dir);
    const events = rows(1000);
    await log.append(events);
    const ends = await log.endOffsets();
    const before = await Promise.all([0, 1, 2, 3].map((p) => readAll(log, p)));
    await log.close();
    const reopened = await openLog(dir);
    assert.deepEqual(await reopened.endOffsets(), ends);
    assert.deepEqual(await Promise.all([0, 1, 2, 3].map((p) => readAll(reopened, p))), before);
    const meta = JSON.parse(await fs.readFile(path.join(dir, 'meta.json'), 'utf8'));
    assert.deepEqual(meta, { partitions: 4, format: 2 });
  });

  describe('recovery of a torn tail', () => {
    const N = 20;
    async function corruptAndReopen(corrupt: (file: string, lastFrame: number) => Promise<void>) {
      const dir = await tempDir();
      const events = rows(N);
      const log = await openLog(dir, 1);
      await log.append(events);
      await log.close();
      const file = path.join(dir, 'partitions', '0', '00000000000000000000.log');
      await corrupt(file, encodeRecord(events[N - 1]).length);
      const { result: reopened, lines } = await captureStderr(() => openLog(dir, 1));
      return { events, file, reopened, lines };
    }

    async function assertKeptAndAppendable(log: FileLog, kept: ChangeEvent[]) {
      assert.deepEqual(await log.endOffsets(), [kept.length]);
      assert.deepEqual((await readAll(log, 0)).map((r) => r.event), kept);
      const next = makeEvent({ key: { id: 'after-crash' } });
      await log.append([next]);
      assert.deepEqual(await log.read(0, kept.length, 10), [{ partition: 0, offset: kept.length, event: next }]);
    }

    it('cuts a record truncated halfway', async () => {
      const { events, file, reopened, lines } = await corruptAndReopen(async (file, last) => {
        await fs.truncate(file, (await fs.stat(file)).size - Math.floor(last / 2));
      });
      assert.equal(lines.length, 1);
      assert.match(lines[0], new RegExp(`^file-log: partition 0: cut a torn record at byte \\d+ \\(offset ${N - 1}\\): .*record bytes are present`));
      assert.ok(lines[0].includes(file));
      await assertKeptAndAppendable(reopened, events.slice(0, N - 1));
    });

    it('cuts a record whose payload has a flipped byte', async () => {
      const { events, reopened, lines } = await corruptAndReopen(async (file) => {
        const bytes = await fs.readFile(file);
        bytes[bytes.length - 3] ^= 0xff;
        await fs.writeFile(file, bytes);
      });
      assert.match(lines.join('\n'), new RegExp(`partition 0: cut a torn record at byte \\d+ \\(offset ${N - 1}\\): crc32 mismatch`));
      await assertKeptAndAppendable(reopened, events.slice(0, N - 1));
    });

    it('cuts a zero-filled tail and keeps every complete record', async () => {
      const { events, reopened, lines } = await corruptAndReopen((file) => fs.appendFile(file, Buffer.alloc(4096)));
      assert.match(lines.join('\n'), new RegExp(`\\(offset ${N}\\): zero-length record`));
      await assertKeptAndAppendable(reopened, events);
    });
  });

  it('stores committed offsets durably per consumer', async () => {
    const dir = await tempDir();
    const log = await openLog(dir);
    await log.append(rows(200));
    const ends = await log.endOffsets();
    assert.deepEqual(await log.committedOffsets('redis-sink'), [0, 0, 0, 0]);
    await Promise.all([log.commit('redis-sink', 2, 5), log.commit('redis-sink', 1, ends[1]), log.commit('es.sink_1', 0, 3)]);
    await assert.rejects(log.commit('redis-sink', 3, ends[3] + 1), new RegExp(`offset ${ends[3] + 1} on partition 3.*end offset ${ends[3]}`));
    for (const bad of ['../evil', 'a/b', '', 'has space', '..']) {
      await assert.rejects(log.commit(bad, 0, 0), /invalid consumer name/);
      await assert.rejects(log.committedOffsets(bad), /invalid consumer name/);
    }
    await log.close();
    const reopened = await openLog(dir);
    assert.deepEqual(await reopened.committedOffsets('redis-sink'), [0, ends[1], 5, 0]);
    assert.deepEqual(await reopened.committedOffsets('es.sink_1'), [3, 0, 0, 0]);
    assert.deepEqual(await reopened.committedOffsets('fresh'), [0, 0, 0, 0]);
  });

  it('wakes waitForAppend on a later append and on abort, without leaking listeners', async () => {
    const log = await openLog(await tempDir(), 1);
    const ac = new AbortController();
    let woken = false;
    const waiting = log.waitForAppend(0, 0, ac.signal).then(() => (woken = true));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(woken, false);
    await log.append(rows(1));
    await waiting;
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
    await log.waitForAppend(0, 0, ac.signal); // already there: immediate
    const aborted = log.waitForAppend(0, 5, ac.signal);
    ac.abort();
    await aborted;
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
  });

  it('fails the append whose fdatasync failed, naming the dir and the free space, hides it, and accepts the next append', async () => {
    const dir = await tempDir();
    const log = await openLog(dir, 1);
    await log.append(rows(3));
    const sync = Segment.prototype.sync;
    Segment.prototype.sync = () => Promise.reject(new Error('EIO: simulated'));
    try {
      await assert.rejects(log.append(rows(2)), (error: Error) => {
        assert.ok(error.message.startsWith(`file-log: appending to ${dir} failed: EIO: simulated (`), error.message);
        assert.match(error.message, /\d+ bytes free on its file system\)\. Nothing of this append was acknowledged; the partial write was cut back/);
        return true;
      });
    } finally {
      Segment.prototype.sync = sync;
    }
    assert.deepEqual(await log.endOffsets(), [3]);
    assert.equal((await readAll(log, 0)).length, 3);
    await log.append(rows(1));
    assert.deepEqual(await log.endOffsets(), [4]);
    await log.close();
    const reopened = await openLog(dir, 1);
    assert.deepEqual(await reopened.endOffsets(), [4]);
    assert.deepEqual((await readAll(reopened, 0)).map((r) => r.offset), [0, 1, 2, 3]);
  });

  it('refuses to open with a different partition count', async () => {
    const dir = await tempDir();
    await (await openLog(dir, 4)).close();
    await assert.rejects(openLog(dir, 8), (err: Error) => {
      assert.match(err.message, /created with 4 partitions but is being opened with 8/);
      assert.ok(err.message.includes(dir), err.message);
      return true;
    });
  });

  it('keeps every acknowledged batch when the writer is killed with SIGKILL', async () => {
    const dir = await tempDir();
    const script = path.join(dir, 'child.js');
    const fileLogJs = path.resolve(__dirname, '../../core/log/file-log.js');
    const eventsJs = path.resolve(__dirname, '../support/events.js');
    await fs.writeFile(script, `
      const { FileLog } = require(${JSON.stringify(fileLogJs)});
      const { makeEvent } = require(${JSON.stringify(eventsJs)});
      (async () => {
        const log = new FileLog({ dir: process.argv[2], partitions: 4 });
        await log.open();
        const worker = async (w) => {
          for (let n = 0; ; n++) {
            await log.append(Array.from({ length: 50 }, (_, i) => makeEvent({ key: { id: w + ':' + n + ':' + i }, after: { w, n, i } })));
            process.stdout.write(w + ':' + n + '\\n');
          }
        };
        await Promise.all([0, 1, 2].map(worker));
      })();
    `);
    const child = spawn(process.execPath, [script, path.join(dir, 'log')], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    const exited = new Promise((resolve) => child.on('exit', resolve));
    // Kill ~300 ms into appending (waiting for the first ack first, so a slow start cannot make this flaky).
    await new Promise((resolve) => child.stdout.once('data', resolve).once('end', resolve));
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGKILL');
    await exited;
    const acked = out.split('\n').slice(0, -1); // the last piece may be a partial line
    assert.ok(acked.length > 0, 'the child acknowledged no batch before being killed');

    const log = await openLog(path.join(dir, 'log'));
    const found = new Map<string, number>();
    for (let p = 0; p < 4; p++) {
      const records = await readAll(log, p);
      assert.equal(records.length, (await log.endOffsets())[p]);
      const last = [-1, -1, -1];
      for (const { event } of records) {
        const { w, n } = event.after as { w: number; n: number };
        assert.ok(n >= last[w], `worker ${w} batch ${n} after batch ${last[w]} in partition ${p}`);
        last[w] = n;
        found.set(`${w}:${n}`, (found.get(`${w}:${n}`) ?? 0) + 1);
      }
    }
    for (const batch of acked) assert.equal(found.get(batch), 50, `acknowledged batch ${batch} is incomplete`);
    console.log(`      ${acked.length} batches acknowledged before SIGKILL, all present`);
  });
});

describe('FileLog directory lock', () => {
  it('refuses a second open of the same directory while the first is open, and allows it after close', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'file-log-lock-'));
    const first = new FileLog({ dir, partitions: 2 });
    await first.open();
    const script = `new (require(${JSON.stringify(require.resolve('../../core/log/file-log'))}).FileLog)({ dir: ${JSON.stringify(dir)}, partitions: 2 }).open().then(() => console.log('opened'), (e) => console.log(e.message))`;
    const other = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    assert.match(other.stdout, new RegExp(`${dir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is in use by process ${process.pid}`));
    await first.close();
    const again = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    assert.equal(again.stdout.trim(), 'opened');
    await fs.rm(dir, { recursive: true, force: true });
  });
});
