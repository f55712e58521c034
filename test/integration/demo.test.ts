import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../support/kafka';

describe('the demo (README command one)', function () {
  this.timeout(120_000);

  it('starts its own servers, streams the write load into Redis and a DuckDB warehouse, and stops cleanly', () => {
    const demoDir = mkdtempSync(join(tmpdir(), 'cdc-demo-'));
    const result = spawnSync(process.execPath, [join(packageRoot(), 'dist', 'demo', 'run-demo.js')], {
      env: { ...process.env, DEMO_SECONDS: '4', DEMO_DIR: demoDir },
      encoding: 'utf8',
      timeout: 100_000,
    });
    rmSync(demoDir, { recursive: true, force: true });
    assert.equal(result.status, 0, `demo exit code; output:\n${result.stdout}\n${result.stderr}`);
    const progress = [...result.stdout.matchAll(/postgres: (\d+) customers, (\d+) orders \| redis: (\d+) customers, (\d+) orders/g)];
    assert.ok(progress.length >= 2, `progress lines:\n${result.stdout}`);
    const [, pgCustomers, pgOrders, redisCustomers, redisOrders] = progress[progress.length - 1];
    assert.ok(Number(pgOrders) > 0);
    assert.deepEqual([redisCustomers, redisOrders], [pgCustomers, pgOrders], 'Redis caught up with Postgres by the last report');
    assert.match(result.stdout, /service stopped/);
    const warehouse = /warehouse \(DuckDB, [^)]+\): (\d+) customers, (\d+) orders/.exec(result.stdout);
    assert.ok(warehouse, `warehouse line:\n${result.stdout}`);
    assert.deepEqual([warehouse[1], warehouse[2]], [pgCustomers, pgOrders], 'the DuckDB warehouse holds the same rows');
  });
});
