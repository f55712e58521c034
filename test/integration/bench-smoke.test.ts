import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../support/kafka';

// The quickest benchmark scenario end to end, as `npm run bench -- --quick pg-source` runs it:
// its own throwaway Postgres, our source into the log, pg_recvlogical on the same WAL, one table.
describe('benchmark runner (smoke)', function () {
  this.timeout(60_000);
  const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('prints a table row for the Postgres source with both rates and a numeric ratio, and writes it as JSON', () => {
    const json = join(dir, 'latest.json');
    const result = spawnSync(process.execPath, [join(packageRoot(), 'dist', 'bench', 'run.js'), '--quick', 'pg-source', '--json', json], {
      cwd: packageRoot(),
      encoding: 'utf8',
      timeout: 50_000,
    });
    assert.equal(result.status, 0, `bench exited with ${result.status}: ${result.stderr}\n${result.stdout}`);
    const row = result.stdout.split('\n').find((line) => line.startsWith('| 1. Postgres source → durable log'));
    assert.ok(row, `no Postgres source row in:\n${result.stdout}`);
    const cells = row.split('|').map((c) => c.trim());
    // | scenario | ours | baseline name | baseline | ratio | peak RSS | notes |
    assert.match(cells[2], /^[\d,]+ rows\/s$/, `ours: ${cells[2]}`);
    assert.match(cells[3], /pg_recvlogical/);
    assert.match(cells[4], /^[\d,]+ rows\/s$/, `baseline: ${cells[4]}`);
    assert.match(cells[5], /^\d+%$/, `ratio: ${cells[5]}`);
    assert.ok(Number(cells[5].slice(0, -1)) > 0, 'the ratio is above 0%');
    assert.match(cells[6], /^\d+ MB$/, `peak RSS: ${cells[6]}`);

    const saved = JSON.parse(readFileSync(json, 'utf8')) as { rows: Array<{ scenario: string; ratio: number; ours: { median: number }; baseline: { median: number } }> };
    assert.equal(saved.rows.length, 1);
    const [only] = saved.rows;
    assert.ok(only.ours.median > 0 && only.baseline.median > 0, JSON.stringify(only));
    assert.ok(Math.abs(only.ratio - only.ours.median / only.baseline.median) < 1e-9, 'the ratio is ours / baseline');
  });
});
