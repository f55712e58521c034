import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary } from '../support/ensure-binary';
import { runCli, writeConfig } from '../support/service-process';

const VALID = `service: { name: shop, dataDir: ./var, http: { port: 1 } }
log: { type: embedded, partitions: 4 }
sources:
  - { name: shop-pg, type: postgres, url: "postgres://127.0.0.1:1/shop", tables: [public.customers, public.orders] }
sinks:
  - { name: cache, type: redis, url: "redis://127.0.0.1:1", keyPrefix: "cdc:", tables: ["*"] }
`;

describe('cdc CLI for scripts and shells: --json, exit codes, completion', function () {
  this.timeout(180_000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'cdc-cli-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('documents the exit codes and --json in cdc --help', () => {
    const help = runCli(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Exit codes:\n  0  success.*\n  1  failure.*\n  2  cdc verify found differences/);
    for (const command of ['pause', 'resume', 'completion']) assert.match(help.stdout, new RegExp(`\\n  ${command} `));
  });

  it('takes --json on every command an operator scripts', () => {
    for (const command of ['validate', 'status', 'resync', 'reprocess', 'verify', 'pause', 'resume']) {
      assert.match(runCli([command, '--help']).stdout, /--json/, `cdc ${command} --help lists --json`);
    }
    const file = writeConfig(join(dir, 'cdc.yaml'), VALID);
    const valid = runCli(['validate', '-c', file, '--json']);
    assert.equal(valid.code, 0, valid.stderr);
    assert.deepEqual(JSON.parse(valid.stdout), { file, valid: true, sources: ['shop-pg'], sinks: ['cache'] });
    const broken = writeConfig(join(dir, 'broken.yaml'), VALID.replace('partitions: 4', 'partitions: four'));
    const invalid = runCli(['validate', '-c', broken, '--json']);
    assert.equal(invalid.code, 1);
    const verdict = JSON.parse(invalid.stdout);
    assert.equal(verdict.valid, false);
    assert.match(verdict.error, /log\.partitions/);
  });

  it('exits 1 naming the service address when the service is not running', () => {
    const file = writeConfig(join(dir, 'cdc.yaml'), VALID);
    const result = runCli(['pause', '-c', file, '--table', 'public.orders', '--json']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /cannot reach the service at http:\/\/127\.0\.0\.1:1\/api\/pause/);
  });

  it('completes commands, options and option values in bash', function () {
    const bash = findBinary(['bash']);
    if (!bash) {
      console.log('    skipped: bash not found');
      return this.skip();
    }
    const script = join(dir, 'cdc.bash');
    writeFileSync(script, runCli(['completion', 'bash']).stdout);
    const complete = (line: string) => {
      const words = line.split(' ');
      const program = `source ${script}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _cdc; echo "\${COMPREPLY[*]}"`;
      return spawnSync(bash, ['-c', program], { encoding: 'utf8' }).stdout.trim();
    };
    assert.equal(complete('cdc pa'), 'pause');
    assert.equal(complete('cdc st'), 'status');
    assert.deepEqual(complete('cdc status --').split(' ').sort(), ['--config', '--help', '--json', '--watch']);
    assert.equal(complete('cdc run --only s'), 'sources sinks');
    assert.equal(complete('cdc completion '), '--json --help bash zsh');
  });

  it('prints a zsh completion script that zsh accepts', function () {
    const zsh = findBinary(['zsh']);
    const text = runCli(['completion', 'zsh']).stdout;
    assert.match(text, /^#compdef cdc/);
    assert.match(text, /"pause"\) _arguments .*--table/);
    if (!zsh) {
      console.log('    zsh not found (apt-get install -y zsh): checked the script text only');
      return;
    }
    const file = join(dir, '_cdc');
    writeFileSync(file, text);
    const check = spawnSync(zsh, ['-n', file], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stderr);
  });

  it('refuses a shell it has no completion for', () => {
    const result = runCli(['completion', 'fish']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /no completion for shell "fish": use bash or zsh/);
  });
});
