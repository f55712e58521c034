import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../config/load';

const config = (verify: string) => `service: { name: t, dataDir: ./var }
sources:
  - { name: src, type: postgres, url: "postgres://u@127.0.0.1/db", tables: [public.items] }
sinks:
  - { name: search, type: elasticsearch, node: "http://127.0.0.1:9200"${verify} }
  - { name: wh, type: warehouse, engine: postgres, url: "postgres://u@127.0.0.1/wh"${verify} }
  - { name: cache, type: redis, url: "redis://127.0.0.1:6379"${verify} }
`;

describe('sink config: verify (continuous verification)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cdc-verify-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const load = (text: string) => {
    const file = join(dir, 'cdc.yaml');
    writeFileSync(file, text);
    return loadConfig(file, {});
  };

  it('is off when absent, and every sink type takes it with defaults for what is left out', () => {
    assert.deepEqual(load(config('')).sinks.map((s) => s.verify), [undefined, undefined, undefined]);
    for (const sink of load(config(', verify: { intervalMs: 1000 }')).sinks) {
      assert.deepEqual(sink.verify, { intervalMs: 1000, chunksPerRun: 1, chunkSize: 500, recheckDelayMs: 5000 }, sink.name);
    }
  });

  it('refuses bad values and unknown keys, naming the setting', () => {
    assert.throws(() => load(config(', verify: { intervalMs: 10 }')), /sinks\[0\]\.verify\.intervalMs/);
    assert.throws(() => load(config(', verify: { chunksPerRun: 0 }')), /verify\.chunksPerRun/);
    assert.throws(() => load(config(', verify: { everyMs: 100 }')), /everyMs/);
  });
});
