import { strict as assert } from 'node:assert';
import { DecodedEvent } from '../../connectors/mysql/binlog-decoder';
import { NativeRowsDecoder } from '../../connectors/mysql/native-rows-decoder';
import { ZongjiDecoder } from '../../connectors/mysql/zongji-decoder';
import { binlogEnd, decodeBinlog } from '../support/binlog-decode';
import { seededRandom } from '../support/seeded-random';
import { MariadbServer, startMariadb, stopAll } from '../support/servers';
import { sql } from './mysql-fixture';

const MIXED = `(
  id INT PRIMARY KEY, ti TINYINT, siu SMALLINT UNSIGNED, mi MEDIUMINT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  f FLOAT, db DOUBLE, d DECIMAL(20,6), d0 DECIMAL(12,0),
  vc VARCHAR(60), c CHAR(8), lat VARCHAR(30) CHARACTER SET latin1, tx TEXT, bl BLOB, vb VARBINARY(16), bin BINARY(6), j JSON,
  e ENUM('red','green','blue'), s SET('x','y','z','w'), b BIT(12), b1 BIT(1),
  dt DATE, y YEAR, tm TIME(4), dtm DATETIME(6), dtm0 DATETIME, ts TIMESTAMP(3) NULL
) DEFAULT CHARSET = utf8mb4`;
const COLUMNS = ['ti', 'siu', 'mi', 'iu', 'bi', 'biu', 'f', 'db', 'd', 'd0', 'vc', 'c', 'lat', 'tx', 'bl', 'vb', 'bin', 'j', 'e', 's', 'b', 'b1', 'dt', 'y', 'tm', 'dtm', 'dtm0', 'ts'];

/** SQL literals of random values of each column (NULL a tenth of the time). */
function randomValues(random: () => number): Record<string, () => string> {
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)];
  const big = (bits: number, signed: boolean) => {
    let v = 0n;
    for (let i = 0; i < bits; i += 16) v = (v << 16n) | BigInt(int(0, 0xffff));
    v &= (1n << BigInt(bits)) - 1n;
    if (random() < 0.5) v >>= BigInt(int(0, bits - 1)); // small ones too
    return String(signed && random() < 0.5 ? -v : v);
  };
  const chars = ['a', 'Z', '0', ' ', 'é', 'ß', '😀', '漢', "'", '\\\\', ',', '€'];
  const text = (max: number, alphabet = chars) => `'${Array.from({ length: int(0, max) }, () => pick(alphabet)).join('').replace(/'/g, "''")}'`;
  const hex = (max: number) => `x'${Array.from({ length: int(0, max) }, () => int(0, 255).toString(16).padStart(2, '0')).join('')}'`;
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  const date = () => `${int(1000, 9999)}-${pad(int(1, 12))}-${pad(int(1, 28))}`;
  const fraction = (digits: number) => (random() < 0.3 ? '' : `.${String(int(0, 10 ** digits - 1)).padStart(digits, '0')}`);
  const json = (depth: number): string => {
    const kind = int(0, depth > 2 ? 3 : 5);
    if (kind === 0) return String(int(-1e6, 1e6));
    if (kind === 1) return pick(['12345678901234567890', '1.5e300', '-0.25', 'true', 'null']);
    if (kind === 2 || kind === 3) return JSON.stringify(pick(['', 'x', 'é😀', 'a"b']));
    if (kind === 4) return `[${Array.from({ length: int(0, 3) }, () => json(depth + 1)).join(', ')}]`;
    return `{${Array.from({ length: int(0, 3) }, (_, i) => `"k${i}": ${json(depth + 1)}`).join(', ')}}`;
  };
  const orNull = (make: () => string) => () => (random() < 0.1 ? 'NULL' : make());
  const values: Record<string, () => string> = {
    ti: () => String(int(-128, 127)), siu: () => String(int(0, 65535)), mi: () => String(int(-8388608, 8388607)), iu: () => String(int(0, 4294967295)),
    bi: () => big(63, true), biu: () => big(64, false),
    f: () => String(Math.fround((random() - 0.5) * 10 ** int(-10, 30))), db: () => String((random() - 0.5) * 10 ** int(-300, 300)),
    d: () => `${random() < 0.5 ? '-' : ''}${int(0, 99999999999999)}.${pad(int(0, 999999), 6)}`, d0: () => String(int(-999999999, 999999999) * 1000 + int(0, 999)),
    vc: () => text(60), c: () => text(8, ['a', 'b', 'é', '😀']), lat: () => text(30, ['a', 'é', '€', 'Ÿ', 'ß', "'"]), tx: () => text(300), bl: () => hex(300), vb: () => hex(16), bin: () => hex(6),
    j: () => `'${json(0).replace(/\\/g, '\\\\').replace(/'/g, "''")}'`,
    e: () => pick(["'red'", "'green'", "'blue'"]), s: () => `'${['x', 'y', 'z', 'w'].filter(() => random() < 0.5).join(',')}'`,
    b: () => `b'${int(0, 4095).toString(2)}'`, b1: () => pick(["b'0'", "b'1'"]),
    dt: () => `'${date()}'`, y: () => String(random() < 0.1 ? 0 : int(1901, 2155)),
    tm: () => `'${random() < 0.5 ? '-' : ''}${int(0, 838)}:${pad(int(0, 59))}:${pad(int(0, 59))}${fraction(4)}'`,
    dtm: () => `'${date()} ${pad(int(0, 23))}:${pad(int(0, 59))}:${pad(int(0, 59))}${fraction(6)}'`, dtm0: () => `'${date()} ${pad(int(0, 23))}:${pad(int(0, 59))}:${pad(int(0, 59))}'`,
    ts: () => `FROM_UNIXTIME(${int(1, 2 ** 31 - 1)}${fraction(3)})`,
  };
  return Object.fromEntries(Object.entries(values).map(([k, make]) => [k, orNull(make)]));
}

describe('MySQL native rows decoder against the zongji decoder, on the same binlog of a real MariaDB', function () {
  this.timeout(180_000);
  let server: MariadbServer;

  before(async () => {
    server = await startMariadb();
    await sql(server, "SET GLOBAL time_zone = '+00:00'");
  });
  after(async () => stopAll());

  it('randomized rows of mixed types (seeded): every event equal, every rows event decoded natively', async () => {
    const seed = Number(process.env.TEST_SEED ?? Math.floor(Math.random() * 1e9));
    process.stderr.write(`      native rows randomized test: seed ${seed} (rerun with TEST_SEED=${seed})\n`);
    const random = seededRandom(seed);
    const values = randomValues(random);
    await sql(server, `CREATE DATABASE mixed; CREATE TABLE mixed.t ${MIXED}`);
    const from = await binlogEnd(server);
    const row = (id: number) => `(${id}, ${COLUMNS.map((c) => values[c]()).join(', ')})`;
    let id = 0;
    for (let tx = 0; tx < 60; tx++) {
      const statements = [];
      for (let s = 0, n = 1 + Math.floor(random() * 4); s < n; s++) {
        const kind = random();
        if (kind < 0.6 || id < 10) statements.push(`INSERT INTO mixed.t (id, ${COLUMNS.join(', ')}) VALUES ${Array.from({ length: 1 + Math.floor(random() * 40) }, () => row(++id)).join(', ')}`);
        else if (kind < 0.85) {
          const set = COLUMNS.filter(() => random() < 0.3).map((c) => `${c} = ${values[c]()}`);
          statements.push(`UPDATE mixed.t SET ${[...set, ...(random() < 0.1 ? [`id = id + 100000`] : [])].join(', ') || 'ti = 1'} WHERE id % 7 = ${Math.floor(random() * 7)}`);
        } else statements.push(`DELETE FROM mixed.t WHERE id % 13 = ${Math.floor(random() * 13)}`);
      }
      await sql(server, `SET SESSION sql_mode = ''; BEGIN; ${statements.join('; ')}; COMMIT`);
    }
    const [{ n }] = await sql(server, 'SELECT COUNT(*) AS n FROM mixed.t');
    const zongji = await decodeBinlog(server, new ZongjiDecoder(), from, ['mixed.t']);
    const native = new NativeRowsDecoder();
    const decoded = await decodeBinlog(server, native, from, ['mixed.t']);
    // zongji does not read the event header's server id; ours does (Debezium's source.server_id).
    const [{ sid }] = await sql(server, 'SELECT @@server_id AS sid');
    assert.ok(decoded.filter((e) => e.kind === 'rows').every((e) => e.kind === 'rows' && e.serverId === Number(sid)), `every rows event names server ${sid}`);
    const ours = withoutServerId(decoded);
    const rowsEvents = zongji.filter((e) => e.kind === 'rows');
    assert.ok(rowsEvents.length > 50 && Number(n) > 100, `${rowsEvents.length} rows events, ${n} rows left`);
    assert.equal(ours.length, zongji.length, 'as many events');
    for (let i = 0; i < zongji.length; i++) assert.deepStrictEqual(ours[i], zongji[i], `event ${i} (seed ${seed})`);
    assert.equal(native.stats.nativeEvents, rowsEvents.length, 'every rows event decoded natively');
    assert.equal(native.stats.fallbackEvents, 0);
    // The same table map in every transaction: one TableShape, so the caches keyed on it (column types, JSON columns) hold.
    assert.equal(new Set(ours.map((e) => e.kind === 'rows' && e.table).filter(Boolean)).size, 1, 'one shape object for the unchanged table');
  });

  it('leaves to zongji the tables and events it cannot read (koi8r text, compressed rows events), with the same events', async () => {
    await sql(server, `CREATE DATABASE fb; CREATE TABLE fb.koi (id INT PRIMARY KEY, name VARCHAR(20)) DEFAULT CHARSET = koi8r;
      CREATE TABLE fb.notes (id INT PRIMARY KEY, note TEXT) DEFAULT CHARSET = utf8mb4`);
    const from = await binlogEnd(server);
    await sql(server, `INSERT INTO fb.koi VALUES (1, 'привет'); INSERT INTO fb.notes VALUES (1, 'plain')`);
    try {
      await sql(server, `SET GLOBAL log_bin_compress = ON`);
      // A new connection, so the session takes the global; one transaction: a compressed event of a table whose map was read natively.
      await sql(server, `BEGIN; INSERT INTO fb.notes VALUES (2, REPEAT('compressible ', 100)); INSERT INTO fb.koi VALUES (2, 'мир'); COMMIT`);
    } finally {
      await sql(server, `SET GLOBAL log_bin_compress = OFF`);
    }
    await sql(server, `UPDATE fb.notes SET note = 'after' WHERE id = 1; DELETE FROM fb.koi WHERE id = 1`);
    const zongji = await decodeBinlog(server, new ZongjiDecoder(), from, ['fb.*']);
    const native = new NativeRowsDecoder();
    const ours = withoutServerId(await decodeBinlog(server, native, from, ['fb.*']));
    assert.deepStrictEqual(ours, zongji);
    assert.ok(zongji.filter((e) => e.kind === 'rows').length >= 6);
    assert.deepEqual(Object.fromEntries(native.stats.fallbackTables), { 'fb.koi': 'charset koi8r of column name', 'fb.notes': 'compressed rows event (log_bin_compress)' });
    assert.ok(native.stats.fallbackEvents >= 4 && native.stats.nativeEvents >= 2, `${native.stats.fallbackEvents} events through zongji, ${native.stats.nativeEvents} native`);
  });
});

/** The events without the header's server id, which only the native decoder reads. */
function withoutServerId(events: DecodedEvent[]): DecodedEvent[] {
  return events.map((e) => {
    if (e.kind !== 'rows') return e;
    const { serverId: _serverId, ...rest } = e;
    return rest;
  });
}
