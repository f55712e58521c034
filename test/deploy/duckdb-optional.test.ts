import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../support/kafka';

/** Makes `import('@duckdb/node-api')` fail as it does when the optional package was not installed. */
const HIDE_DUCKDB = `data:text/javascript,import { register } from "node:module";
register("data:text/javascript,export async function resolve(s, c, next) { if (s === '@duckdb/node-api') { const e = new Error('Cannot find package @duckdb/node-api'); e.code = 'ERR_MODULE_NOT_FOUND'; throw e; } return next(s, c); }");`;

describe('the DuckDB warehouse without the optional package', () => {
  it('says which package to install when @duckdb/node-api is missing', () => {
    const engine = join(packageRoot(), 'dist', 'sinks', 'warehouse', 'duckdb.js');
    const script = `const { DuckDbEngine } = require(${JSON.stringify(engine)});
new DuckDbEngine(require('node:os').tmpdir() + '/h7-missing.duckdb').open().then(() => console.log('opened'), (e) => console.log('ERROR ' + e.message));`;
    const result = spawnSync(process.execPath, ['--import', HIDE_DUCKDB, '-e', script], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(result.stdout.trim(), 'ERROR the DuckDB warehouse needs the optional package @duckdb/node-api: run npm install @duckdb/node-api', result.stderr);
  });
});
