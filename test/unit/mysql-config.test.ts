import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../config/load';
import { parseMysqlUrl } from '../../connectors/mysql/connection';

describe('MySQL source config', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'cdc-mysql-config-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const load = (source: string) => {
    const file = join(dir, 'cdc.yaml');
    writeFileSync(file, `service: { name: shop }\nsources:\n  - ${source}\n`);
    return loadConfig(file, { MYSQL_URL: 'mysql://cdc:s3cret@db.example:3307/' });
  };

  it('is part of the service config, with defaults for the snapshot and heartbeats', () => {
    const config = load('{ name: legacy, type: mysql, url: "${MYSQL_URL}", serverId: 5401, tables: [legacy.products, shop.*] }');
    assert.deepEqual(config.sources[0], {
      name: 'legacy',
      type: 'mysql',
      url: 'mysql://cdc:s3cret@db.example:3307/',
      serverId: 5401,
      tables: ['legacy.products', 'shop.*'],
      snapshot: { mode: 'initial', chunkSize: 2_000 },
      heartbeatIntervalMs: 5000,
      livenessTimeoutMs: 30_000,
    });
  });

  it('names the key path and what was expected when something is wrong', () => {
    const cases: Array<[string, RegExp]> = [
      ['{ name: legacy, type: mysql, url: "${MYSQL_URL}", tables: [legacy.products] }', /sources\[0\]\.serverId/],
      ['{ name: legacy, type: mysql, url: "${MYSQL_URL}", serverId: 0, tables: [legacy.products] }', /sources\[0\]\.serverId/],
      ['{ name: legacy, type: mysql, url: "postgres://x", serverId: 2, tables: [legacy.products] }', /sources\[0\]\.url: .*a mysql:\/\/ URL/],
      ['{ name: legacy, type: mysql, url: "${MYSQL_URL}", serverId: 2, tables: [products] }', /sources\[0\]\.tables\[0\]: .*DATABASE\.TABLE or DATABASE\.\*/],
      ['{ name: legacy, type: mysql, url: "${MYSQL_URL}", serverId: 2, tables: [a.b], snapshot: { mode: sometimes } }', /sources\[0\]\.snapshot\.mode/],
      ['{ name: legacy, type: mysql, url: "${MYSQL_URL}", serverId: 2, tables: [a.b], slot: x }', /sources\[0\]\.slot: unknown key "slot"/],
    ];
    for (const [yaml, message] of cases) assert.throws(() => load(yaml), message, yaml);
  });

  it('reads host, port, user and password from the URL', () => {
    assert.deepEqual(parseMysqlUrl('mysql://cdc:p%40ss@db.example:3307/ignored'), { host: 'db.example', port: 3307, user: 'cdc', password: 'p@ss' });
    assert.deepEqual(parseMysqlUrl('mariadb://root@127.0.0.1/'), { host: '127.0.0.1', port: 3306, user: 'root' });
  });
});
