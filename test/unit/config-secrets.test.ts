import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../config/load';
import { redact, redactText } from '../../config/redact';

describe('config secrets: ${file:...} placeholders and redaction', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'cdc-secrets-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const write = (yaml: string) => {
    const file = join(dir, 'cdc.yaml');
    writeFileSync(file, yaml);
    return file;
  };
  const loadError = (file: string, env: NodeJS.ProcessEnv = {}): string => {
    try {
      loadConfig(file, env);
    } catch (error) {
      assert.ok(error instanceof ConfigError, `a ConfigError, got ${String(error)}`);
      return error.message;
    }
    assert.fail('the config loaded, expected an error');
  };

  it('reads a secret file, trims its trailing newline, and works inside a URL', () => {
    writeFileSync(join(dir, 'pg-password'), 'S3cretPass\n');
    writeFileSync(join(dir, 'admin-token'), 'tok-0123456789abcdef\r\n');
    const file = write(`service: { name: shop, http: { token: "\${file:${join(dir, 'admin-token')}}" } }
sources:
  - { name: pg, type: postgres, url: "postgres://app:\${file:./pg-password}@db.example:5432/shop", tables: [public.t] }
`);
    const config = loadConfig(file, {});
    assert.equal(config.service.http.token, 'tok-0123456789abcdef');
    assert.equal(config.sources[0].url, 'postgres://app:S3cretPass@db.example:5432/shop');
  });

  it('a missing secret file is an error naming the file and the key path', () => {
    const file = write(`service: { name: shop }
sources:
  - { name: pg, type: postgres, url: "\${file:/run/secrets/tidewater-no-such-secret}", tables: [public.t] }
`);
    const message = loadError(file);
    assert.match(message, /cdc\.yaml: sources\[0\]\.url: cannot read secret file \/run\/secrets\/tidewater-no-such-secret \(no such file\)/);
  });

  it('a wrong URL from the environment is reported without its password', () => {
    const file = write(`service: { name: shop }
sources:
  - { name: pg, type: postgres, url: "\${PG_URL}", tables: [public.t] }
`);
    const message = loadError(file, { PG_URL: 'pgsql://app:S3cretPass@db.example/shop' });
    assert.match(message, /sources\[0\]\.url: expected a postgres:\/\/ URL, got the string "pgsql:\/\/app:\*\*\*@db\.example\/shop"/);
    assert.ok(!message.includes('S3cretPass'), message);
  });

  it('a wrong URL whose password came from a secret file is reported without it', () => {
    writeFileSync(join(dir, 'pw'), 'Fil3Secret!\n');
    const file = write(`service: { name: shop }
sources:
  - { name: pg, type: postgres, url: "pgsql://app:\${file:./pw}@db.example/shop", tables: [public.t] }
`);
    const message = loadError(file);
    assert.match(message, /sources\[0\]\.url: expected a postgres:\/\/ URL/);
    assert.ok(!message.includes('Fil3Secret!'), message);
  });

  it('a wrong value under a secret key is never shown', () => {
    const file = write(`service: { name: shop, http: { token: "short-t0ken" } }\n`);
    const message = loadError(file);
    assert.match(message, /service\.http\.token/);
    assert.ok(!message.includes('short-t0ken'), message);
  });

  it('redact() masks URL passwords, password parameters and secret keys, and leaves the rest', () => {
    assert.equal(redactText('cannot connect to postgres://app:S3cretPass@db:5432/shop: refused'), 'cannot connect to postgres://app:***@db:5432/shop: refused');
    assert.equal(redactText('mysql://root:p%40ss@127.0.0.1:3306/'), 'mysql://root:***@127.0.0.1:3306/');
    assert.equal(redactText('host=db user=app password=S3cret sslmode=require'), 'host=db user=app password=*** sslmode=require');
    assert.equal(redactText('redis://127.0.0.1:6379/0'), 'redis://127.0.0.1:6379/0', 'a URL without a password is unchanged');
    assert.equal(redactText('http://127.0.0.1:9464/api/status'), 'http://127.0.0.1:9464/api/status');
    assert.deepEqual(
      redact({ name: 'es', node: 'https://elastic:pw123456@es:9200', apiKey: 'abc', password: 'x', token: 'y', keyPrefix: 'cdc:', tls: { key: '/etc/key.pem' }, nested: [{ secret: 's' }] }),
      { name: 'es', node: 'https://elastic:***@es:9200', apiKey: '***', password: '***', token: '***', keyPrefix: 'cdc:', tls: { key: '***' }, nested: [{ secret: '***' }] },
    );
  });
});
