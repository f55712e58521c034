import { strict as assert } from 'node:assert';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeVersion } from '../../core/event/version';
import { FileLog } from '../../core/log/file-log';
import { makeEvent } from '../support/events';

/** Appends larger than one chunk (8 MiB) are written in pieces: order, completeness and values must not notice. */
describe('FileLog: appends larger than a chunk, and large values', () => {
  let dir: string;
  let log: FileLog | undefined;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'file-log-big-'));
  });
  afterEach(async () => {
    await log?.close();
    log = undefined;
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function readAll(l: FileLog, partition: number) {
    const out = [];
    for (let offset = 0; ; ) {
      const { records, nextOffset } = await l.readBatch(partition, offset, 1000);
      out.push(...records);
      if (nextOffset === offset) return out;
      offset = nextOffset;
    }
  }

  it('keeps call order between a 20 MB append and small appends made while it is written', async () => {
    log = new FileLog({ dir, partitions: 1, compaction: { enabled: false } });
    await log.open();
    const pad = 'p'.repeat(100_000);
    let version = 0;
    const row = (id: string) => makeEvent({ key: { id }, after: { id, pad }, version: makeVersion(BigInt(++version), 1) });
    const big = Array.from({ length: 200 }, (_, i) => row(`big-${i}`));
    const appends = [log.append([row('before')]), log.append(big), log.append([row('after-1')]), log.append([row('after-2')])];
    await Promise.all(appends);
    const ids = (await readAll(log, 0)).map((r) => r.event.key.id);
    assert.deepEqual(ids, ['before', ...big.map((e) => e.key.id), 'after-1', 'after-2']);
  });

  it('round-trips large string values, with and without characters JSON escapes', async () => {
    log = new FileLog({ dir, partitions: 1, compaction: { enabled: false } });
    await log.open();
    const plain = 'a'.repeat(3_000_000);
    const escaped = 'q"\\\n\u0001é😀'.repeat(300_000);
    const lone = 'x\ud800'.repeat(600_000);
    const event = makeEvent({ key: { id: 1 }, after: { id: 1, plain, escaped, lone, nested: { plain } }, version: makeVersion(1n, 1) });
    await log.append([event]);
    const [record] = await readAll(log, 0);
    assert.deepEqual(record.event.after, JSON.parse(JSON.stringify(event.after)));
  });
});
