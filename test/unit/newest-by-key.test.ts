import assert from 'node:assert/strict';
import { NewestByKey } from '../../core/log/newest-by-key';

/** key and version bytes side by side in one buffer, as in a frame. */
function frame(key: string, version: string): { buf: Buffer; v: [number, number]; k: [number, number] } {
  const buf = Buffer.from(`xx${version}${key}yy`, 'latin1');
  return { buf, v: [2, 2 + version.length], k: [2 + version.length, 2 + version.length + key.length] };
}

describe('NewestByKey (a compaction pass\'s row map)', () => {
  it('holds the newest (version, offset) of each key like a Map of strings does, long keys included', () => {
    const table = new NewestByKey(64 * 1024 * 1024);
    const model = new Map<string, [string, number]>();
    let seed = 7;
    const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
    for (let offset = 0; offset < 60_000; offset++) {
      const id = rand(20_000);
      const key = id % 50 === 0 ? `["public","wide",{"k":"${'x'.repeat(80)}${id}"}]` : `["public","t",{"id":${id}}]`;
      const version = rand(4) === 0 ? `${rand(10)}` : `0000${rand(1000).toString(16).padStart(4, '0')}`; // some versions of another length
      const f = frame(key, version);
      assert.ok(table.offer(f.buf, f.k[0], f.k[1], f.v[0], f.v[1], offset));
      const current = model.get(key);
      if (!current || version > current[0] || (version === current[0] && offset > current[1])) model.set(key, [version, offset]);
    }
    assert.equal(table.size, model.size);
    for (const [key, [version, offset]] of model) {
      const at = frame(key, version);
      assert.equal(table.hasNewer(at.buf, at.k[0], at.k[1], at.v[0], at.v[1], offset), false, `${key} holds nothing newer than its newest`);
      assert.equal(table.hasNewer(at.buf, at.k[0], at.k[1], at.v[0], at.v[1], offset - 1), true, `${key} holds something newer than an older offset`);
      const shorter = frame(key, version.slice(0, -1));
      assert.equal(table.hasNewer(shorter.buf, shorter.k[0], shorter.k[1], shorter.v[0], shorter.v[1], offset + 1), version.length > 0, 'a version prefix sorts first');
    }
    const unknown = frame('["public","t",{"id":-1}]', '0');
    assert.equal(table.hasNewer(unknown.buf, unknown.k[0], unknown.k[1], unknown.v[0], unknown.v[1], 0), false);
  });

  it('refuses new keys past its byte bound and its key bound, and still updates the keys it holds', () => {
    const bounded = new NewestByKey(1024 * 1024);
    let accepted = 0;
    for (let id = 0; id < 100_000; id++) {
      const f = frame(`["public","t",{"id":${id}}]`, '000000001ebf2fa000000000');
      if (!bounded.offer(f.buf, f.k[0], f.k[1], f.v[0], f.v[1], id)) break;
      accepted += 1;
    }
    assert.ok(accepted > 5_000 && accepted < 100_000, `held ${accepted} keys in 1 MiB`);
    assert.ok(bounded.bytes <= 1024 * 1024, `${bounded.bytes} bytes`);
    const again = frame('["public","t",{"id":0}]', '000000001ebf2fa000000001');
    assert.ok(bounded.offer(again.buf, again.k[0], again.k[1], again.v[0], again.v[1], 200_000), 'a held key takes a newer version');
    const old = frame('["public","t",{"id":0}]', '000000001ebf2fa000000000');
    assert.ok(bounded.hasNewer(old.buf, old.k[0], old.k[1], old.v[0], old.v[1], 0));
    const byCount = new NewestByKey(1024 * 1024, 3);
    const offered = [0, 1, 2, 3].map((id) => {
      const f = frame(`["t",{"id":${id}}]`, '1');
      return byCount.offer(f.buf, f.k[0], f.k[1], f.v[0], f.v[1], id);
    });
    assert.deepEqual(offered, [true, true, true, false]);
  });
});
