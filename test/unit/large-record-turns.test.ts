import { strict as assert } from 'node:assert';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeVersion } from '../../core/event/version';
import { FileLog } from '../../core/log/file-log';
import { LargeRecordTurns } from '../../core/log/large-record-gc';
import { makeEvent } from '../support/events';

const settled = () => new Promise((resolve) => setImmediate(resolve));

describe('LargeRecordTurns: ordinary reads side by side, huge records alone', () => {
  it('grants shared turns together, and an exclusive one only once they have all ended', async () => {
    const turns = new LargeRecordTurns();
    const endA = await turns.shared();
    const endB = await turns.shared();
    let exclusiveGranted = false;
    const exclusive = turns.exclusive().then((end) => ((exclusiveGranted = true), end));
    await settled();
    assert.equal(exclusiveGranted, false, 'the exclusive turn waits for the shared ones');
    endA();
    endA(); // ending twice must not end someone else's turn
    await settled();
    assert.equal(exclusiveGranted, false, 'one shared turn is still held');
    endB();
    (await exclusive)();
  });

  it('holds shared turns asked after a waiting exclusive one, so a stream of reads cannot starve a huge record', async () => {
    const turns = new LargeRecordTurns();
    const endFirst = await turns.shared();
    const order: string[] = [];
    const exclusive = turns.exclusive().then((end) => (order.push('exclusive'), end));
    const later = turns.shared().then((end) => (order.push('later shared'), end));
    await settled();
    assert.deepEqual(order, []);
    endFirst();
    (await exclusive)();
    (await later)();
    assert.deepEqual(order, ['exclusive', 'later shared']);
  });
});

describe('FileLog.readBatch refuseFrom: a huge next record is declined before its bytes are read', () => {
  let dir: string;
  let log: FileLog | undefined;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'file-log-refuse-'));
  });
  afterEach(async () => {
    await log?.close();
    log = undefined;
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('returns the small records before a huge one, then refuses the huge one, then reads it when not asked to refuse', async () => {
    log = new FileLog({ dir, partitions: 1, compaction: { enabled: false } });
    await log.open();
    const row = (id: string, value: string, v: number) => makeEvent({ key: { id }, after: { id, value }, version: makeVersion(BigInt(v), 1) });
    await log.append([row('a', 'small', 1), row('b', 'small', 2)]);
    await log.append([row('huge', 'h'.repeat(3 * 1024 * 1024), 3)]);
    const refuseFrom = 2 * 1024 * 1024;

    const first = await log.readBatch(0, 0, 1000, { refuseFrom });
    assert.deepEqual(first.records.map((r) => r.event.key.id), ['a', 'b'], 'the small records come without the huge one');
    assert.equal(first.refusedBytes, undefined);

    const second = await log.readBatch(0, first.nextOffset, 1000, { refuseFrom });
    assert.deepEqual(second.records, []);
    assert.equal(second.nextOffset, first.nextOffset, 'a refused read does not move on');
    assert.ok(second.refusedBytes! > 3 * 1024 * 1024, `refusedBytes names the frame's length (${second.refusedBytes})`);

    const third = await log.readBatch(0, first.nextOffset, 1000);
    assert.deepEqual(third.records.map((r) => r.event.key.id), ['huge']);
    assert.equal((third.records[0].event.after as { value: string }).value.length, 3 * 1024 * 1024);
  });
});
