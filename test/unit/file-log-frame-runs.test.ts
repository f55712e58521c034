import { strict as assert } from 'node:assert';
import { ChangeEvent } from '../../core/event/change-event';
import { LogRecord } from '../../core/log/change-log';
import { FileLog } from '../../core/log/file-log';
import { LARGE_STRING_CHARS } from '../../core/log/json-pieces';
import { partitionsOf } from '../../core/log/partitioner';
import { encodeRecord, FrameRunEncoder } from '../../core/log/record-codec';
import { makeEvent } from '../support/events';
import { tempFileLogs } from '../support/temp-file-logs';

// Appends encode ordinary events back to back into a scratch buffer per partition (FrameRunEncoder),
// handed over as runs of frames; huge rows keep a frame of their own. The bytes on disk must be exactly
// what encodeRecord() writes (existing readers, the compactor and format-upgrade rely on it).
describe('FileLog frame runs', () => {
  const openLog = tempFileLogs('file-log-runs-');

  async function readAll(log: FileLog, partition: number): Promise<LogRecord[]> {
    const out: LogRecord[] = [];
    for (let from = 0, batch = await log.read(partition, 0, 1000); batch.length > 0; batch = await log.read(partition, from, 1000)) {
      out.push(...batch);
      from = batch[batch.length - 1].offset + 1;
    }
    return out;
  }

  const mixed = (): ChangeEvent[] => [
    makeEvent({ key: { id: 1 }, after: { id: 1, name: 'plain' } }),
    makeEvent({ key: { id: 'ü:2' }, after: { id: 'ü:2', name: 'naïve 日本語 😀', note: 'quote " backslash \\ tab \t' } }),
    makeEvent({ key: { id: 3 }, op: 'd' }),
    makeEvent({ table: 'other', op: 't' }),
    { ...makeEvent({ key: { a: 1, b: 'x' }, op: 'u', after: { a: 1, b: 'x', big: null } }), unchanged: ['big'] },
  ];

  it('encodes frames byte for byte as encodeRecord does', () => {
    const encoder = new FrameRunEncoder();
    const expected: Buffer[] = [];
    for (const event of mixed()) {
      assert.equal(encoder.add(event), true);
      expected.push(encodeRecord(event));
    }
    assert.deepEqual(encoder.bytes(0, encoder.length), Buffer.concat(expected));
    encoder.reset();
    assert.equal(encoder.add(makeEvent({ after: { id: 1, v: 'x'.repeat(LARGE_STRING_CHARS) } })), false, 'a huge value takes encodeRecord');
    assert.equal(encoder.length, 0);
  });

  it('keeps per-partition order across runs, truncates in every partition, huge rows between small ones, and any hint', async () => {
    const log = await openLog(3);
    const huge = (id: number, deep: boolean): ChangeEvent =>
      makeEvent({ key: { id }, after: deep ? { id, doc: { nested: { v: 'h'.repeat(LARGE_STRING_CHARS + 10) } } } : { id, v: 'h'.repeat(LARGE_STRING_CHARS + 10) } });
    const appends: ChangeEvent[][] = [
      [...mixed(), huge(100, false), ...mixed(), huge(101, true), makeEvent({ key: { id: 7 } })],
      Array.from({ length: 500 }, (_, i) => makeEvent({ key: { id: i % 37 }, after: { id: i % 37, n: i } })),
      [makeEvent({ op: 't' }), ...mixed()],
      // Each partition's scratch fills (RUN_HANDOVER_BYTES) and is handed over several times, around a truncate.
      Array.from({ length: 6000 }, (_, i) =>
        i === 3000 ? makeEvent({ op: 't' }) : makeEvent({ key: { id: i }, after: { id: i, pad: 'p'.repeat(200 + (i % 50)) } })),
    ];
    // The second append claims small rows (true); the first and third claim none although they hold huge ones
    // at depths roughEventBytes() does not see: either way every record must come back.
    await Promise.all([log.append(appends[0], { largestEventBytes: 0 }), log.append(appends[1], { largestEventBytes: 64 }), log.append(appends[2]), log.append(appends[3])]);
    const expected = new Map<number, ChangeEvent[]>();
    for (const event of appends.flat()) for (const p of partitionsOf(event, 3)) expected.set(p, [...(expected.get(p) ?? []), event]);
    for (let p = 0; p < 3; p++) {
      const records = await readAll(log, p);
      assert.deepEqual(records.map((r) => r.offset), records.map((_, i) => i), `partition ${p}: offsets without gaps`);
      assert.deepEqual(records.map((r) => r.event), JSON.parse(JSON.stringify(expected.get(p) ?? [])), `partition ${p}: events in append order`);
    }
  });

  it('rejects an event whose key is too long without writing any of its append', async () => {
    const log = await openLog(2);
    const ok = makeEvent({ key: { id: 1 } });
    const bad = makeEvent({ key: { id: 'k'.repeat(70_000) } });
    await assert.rejects(log.append([ok, bad]), /65535 per key/);
    await log.append([ok]);
    const all = [...(await readAll(log, 0)), ...(await readAll(log, 1))];
    assert.equal(all.length, 1);
  });
});
