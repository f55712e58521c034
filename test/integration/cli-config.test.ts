import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, writeConfig } from '../support/service-process';

const VALID = `service: { name: shop, dataDir: ./var, http: { port: 0 } }
log: { type: embedded, partitions: 4 }
sources:
  - { name: shop-pg, type: postgres, url: "\${PG_URL}", tables: [public.customers, public.orders] }
sinks:
  - { name: cache, type: redis, url: "redis://127.0.0.1:1", keyPrefix: "cdc:", tables: ["*"] }
`;

describe('cdc validate / cdc run with a broken config', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'cdc-config-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const withEnv = { PG_URL: 'postgres://127.0.0.1:1/shop' };

  it('accepts a valid config and exits 0', () => {
    const file = writeConfig(join(dir, 'cdc.yaml'), VALID);
    const result = runCli(['validate', '-c', file], withEnv);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /valid \(1 source\(s\): shop-pg; 1 sink\(s\): cache\)/);
  });

  const cases: Array<{ what: string; yaml: string; env?: NodeJS.ProcessEnv; message: RegExp }> = [
    {
      what: 'an unknown key',
      yaml: VALID.replace('partitions: 4', 'partitions: 4, colour: blue'),
      message: /cdc\.yaml: log\.colour: unknown key "colour"/,
    },
    {
      what: 'a wrong type',
      yaml: VALID.replace('partitions: 4', 'partitions: "four"'),
      message: /cdc\.yaml: log\.partitions: expected number, got the string "four"/,
    },
    {
      what: 'a missing environment variable',
      yaml: VALID,
      env: { PG_URL: '' },
      message: /cdc\.yaml: sources\[0\]\.url: environment variable PG_URL is not set/,
    },
    {
      what: 'an unknown component type',
      yaml: VALID.replace('type: redis', 'type: memcached'),
      message: /cdc\.yaml: sinks\[0\]\.type: expected one of "redis", "elasticsearch", "warehouse", got the string "memcached"/,
    },
    {
      what: 'a missing required key',
      yaml: VALID.replace(', tables: [public.customers, public.orders]', ''),
      message: /cdc\.yaml: sources\[0\]\.tables: missing; expected array/,
    },
    {
      what: 'a table name without its schema',
      yaml: VALID.replace('public.orders', 'orders'),
      message: /cdc\.yaml: sources\[0\]\.tables\[1\]: expected SCHEMA\.TABLE or SCHEMA\.\*, got the string "orders"/,
    },
    {
      what: 'two sinks with one name',
      yaml: VALID + '  - { name: cache, type: redis, url: "redis://127.0.0.1:2" }\n',
      message: /cdc\.yaml: sinks\[1\]\.name: duplicate name "cache"/,
    },
  ];

  for (const { what, yaml, env, message } of cases) {
    for (const command of ['validate', 'run']) {
      it(`${command}: ${what} exits 1 naming the file, the key path and what was expected`, () => {
        const file = writeConfig(join(dir, 'cdc.yaml'), yaml);
        const result = runCli([command, '-c', file], { ...withEnv, ...env });
        assert.equal(result.code, 1, `exit code; stderr: ${result.stderr}`);
        assert.match(result.stderr, message);
        assert.ok(result.stderr.includes(file), 'the message names the config file');
      });
    }
  }

  it('validate: a wrong URL from the environment or a secret file is reported without its password', () => {
    writeConfig(join(dir, 'pg-password'), 'Fil3Secret\n');
    const fromEnv = runCli(['validate', '-c', writeConfig(join(dir, 'cdc.yaml'), VALID)], { PG_URL: 'pgsql://app:S3cretPass@db.example/shop' });
    assert.equal(fromEnv.code, 1);
    assert.match(fromEnv.stderr, /sources\[0\]\.url: expected a postgres:\/\/ URL, got the string "pgsql:\/\/app:\*\*\*@db\.example\/shop"/);
    assert.ok(!fromEnv.stderr.includes('S3cretPass'), fromEnv.stderr);
    const fromFile = runCli(['validate', '-c', writeConfig(join(dir, 'cdc.yaml'), VALID.replace('${PG_URL}', 'pgsql://app:${file:./pg-password}@db.example/shop'))], {});
    assert.equal(fromFile.code, 1);
    assert.match(fromFile.stderr, /sources\[0\]\.url: expected a postgres:\/\/ URL, got the string "pgsql:\/\/app:\*\*\*@db\.example\/shop"/);
    assert.ok(!fromFile.stderr.includes('Fil3Secret'), fromFile.stderr);
    const missing = runCli(['validate', '-c', writeConfig(join(dir, 'cdc.yaml'), VALID.replace('${PG_URL}', '${file:/run/secrets/tidewater-absent}'))], {});
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cdc\.yaml: sources\[0\]\.url: cannot read secret file \/run\/secrets\/tidewater-absent \(no such file\)/);
  });

  it('a file that does not exist exits 1 with the reason', () => {
    const result = runCli(['validate', '-c', join(dir, 'missing.yaml')]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /missing\.yaml: cannot read the config file: ENOENT/);
  });
});

describe('config ${VAR} expansion', () => {
  it('gives a value that is one placeholder alone the type its text reads as (port: ${PORT} is a number)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdc-config-'));
    const file = writeConfig(join(dir, 'cdc.yaml'), VALID.replace('port: 0', 'port: "${CDC_PORT}"'));
    const result = runCli(['validate', '-c', file], { PG_URL: 'postgres://127.0.0.1:1/shop', CDC_PORT: '9555' });
    rmSync(dir, { recursive: true, force: true });
    assert.equal(result.code, 0, result.stderr);
  });
});
