import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDbEngine } from '../../sinks/warehouse/duckdb';

// After "Out of Memory Error" the DuckDB engine raises its memory_limit before it
// checkpoints, and never below the limit it rests at: with 50 MB values the resting
// limit (configured + 2 × the biggest value) was 164 MiB while the first raise went to
// 2 × 64MB, a CHECKPOINT that could not pin a 50 MB block invalidated the database, and
// the database opened again died the same way, for good. The streak survives that reopen.
describe('DuckDB engine: the memory limit after running out of memory', function () {
  this.timeout(60_000);
  let dir: string;
  let engine: DuckDbEngine;
  const MIB = 1024 * 1024;
  const limitMiB = async () => {
    const [row] = await engine.query(`SELECT current_setting('memory_limit') AS v`);
    const [, n, unit] = /^([\d.]+)\s*(\w+)$/.exec(String(row.v))!;
    return Math.round(Number(n) * ({ KiB: 1 / 1024, MiB: 1, GiB: 1024 } as Record<string, number>)[unit]);
  };
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tidewater-duck-oom-'));
    engine = new DuckDbEngine(join(dir, 'w.duckdb'), { memoryLimit: '16MB' });
    await engine.open();
  });
  afterEach(async () => {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('doubles from the resting limit for each failure in a row, rests again once a flush commits, and a reopened database starts raised', async () => {
    // A 12 MB change went through: the limit rests at 16 + 2 × 12 = 40 MiB.
    await engine.beforeTransaction({ bytes: 12 * MIB, largestEventBytes: 12 * MIB });
    await engine.afterCommit();
    assert.equal(await limitMiB(), 40);
    const outOfMemory = new Error('Out of Memory Error: could not allocate block of size 12.0 MiB (30.1 MiB/40.0 MiB used)');
    const first = await engine.afterFailedTransaction(outOfMemory);
    assert.equal(await limitMiB(), 80, 'the first failure doubles the resting limit (it went to 2 × 16MB = 32, below rest)');
    assert.match(first ?? '', /ran out of memory \(1 in a row\): memory_limit raised to 80MiB until a flush commits/);
    await engine.afterFailedTransaction(outOfMemory);
    assert.equal(await limitMiB(), 160);
    // The database dies before a flush commits: the new instance starts at the streak's limit, not at rest.
    await engine.close();
    await engine.open();
    assert.equal(await limitMiB(), 160);
    await engine.afterCommit();
    assert.equal(await limitMiB(), 40, 'a committed flush ends the streak');
    assert.equal(await engine.afterFailedTransaction(new Error('Constraint Error: not about memory')), null);
    assert.equal(await limitMiB(), 40);
  });
});
