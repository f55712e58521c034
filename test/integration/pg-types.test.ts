import { strict as assert } from 'node:assert';
import { PgRedisFixture } from '../support/pg-redis-fixture';
import { PgServer, RedisServer, startPostgres, startRedis, stopAll } from '../support/servers';
import { waitFor } from '../support/wait';

/** Column type, SQL literal, and the JSON value a reader must find in Redis (docs/architecture.md §2: lossless). */
const COLUMNS: Array<[name: string, type: string, literal: string, expected: unknown]> = [
  ['c_smallint', 'smallint', '-32768', -32768],
  ['c_int', 'int', '2147483647', 2147483647],
  ['c_bigint', 'bigint', '9223372036854775807', '9223372036854775807'],
  ['c_numeric', 'numeric', '12345678901234567890.123456789012345678901234567890', '12345678901234567890.123456789012345678901234567890'],
  ['c_numeric_scaled', 'numeric(12,4)', '-0.5', '-0.5000'],
  ['c_numeric_nan', 'numeric', "'NaN'", 'NaN'],
  ['c_real', 'real', '1.5', 1.5],
  ['c_double', 'double precision', '0.1', 0.1],
  ['c_double_nan', 'double precision', "'NaN'", 'NaN'],
  ['c_double_inf', 'double precision', "'-Infinity'", '-Infinity'],
  ['c_bool', 'boolean', 'true', true],
  ['c_text', 'text', `'naïve "quotes" \\ and emoji 🐘'`, 'naïve "quotes" \\ and emoji 🐘'],
  ['c_varchar', 'varchar(10)', "'short'", 'short'],
  ['c_char', 'char(4)', "'ab'", 'ab  '],
  ['c_uuid', 'uuid', "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'],
  ['c_json', 'json', `'{"b": [1, 2.5, "x"], "a": null}'`, { b: [1, 2.5, 'x'], a: null }],
  ['c_jsonb', 'jsonb', `'{"big": 12345678901234567890, "small": 42}'`, { big: '12345678901234567890', small: 42 }],
  ['c_bytea', 'bytea', `'\\x00ff10'`, 'AP8Q'],
  ['c_date', 'date', "'2024-02-29'", '2024-02-29'],
  ['c_time', 'time(6)', "'23:59:59.123456'", '23:59:59.123456'],
  ['c_timetz', 'timetz', "'12:00:00+05:30'", '12:00:00+05:30'],
  ['c_ts', 'timestamp(6)', "'2024-02-29 12:34:56.000001'", '2024-02-29T12:34:56.000001'],
  ['c_tstz', 'timestamptz(6)', "'2024-02-29 12:34:56.789+02'", '2024-02-29T10:34:56.789000Z'],
  ['c_ts_inf', 'timestamptz', "'infinity'", 'infinity'],
  ['c_interval', 'interval', "'1 year 2 months 3 days 04:05:06.5'", 'P1Y2M3DT4H5M6.5S'],
  ['c_int_array', 'int[]', "'{1,2,NULL,4}'", [1, 2, null, 4]],
  ['c_bigint_array', 'bigint[]', "'{9223372036854775807,-1}'", ['9223372036854775807', '-1']],
  ['c_text_array', 'text[]', `'{"a b","c,d",NULL}'`, ['a b', 'c,d', null]],
  ['c_matrix', 'numeric[][]', "'{{1.10,2},{3,4}}'", [['1.10', '2'], ['3', '4']]],
  ['c_tstz_array', 'timestamptz[]', `'{"2024-01-01 00:00:00+00"}'`, ['2024-01-01T00:00:00.000000Z']],
  ['c_enum', 'mood', "'happy'", 'happy'],
  ['c_enum_array', 'mood[]', "'{sad,happy}'", ['sad', 'happy']],
  ['c_domain', 'positive_amount', '12.50', '12.50'],
  ['c_null', 'text', 'NULL', null],
];

const SCHEMA = `
  CREATE TYPE mood AS ENUM ('sad', 'happy');
  CREATE DOMAIN positive_amount AS numeric(10,2) CHECK (VALUE > 0);
  CREATE TABLE typed (id int PRIMARY KEY, ${COLUMNS.map(([name, type]) => `${name} ${type}`).join(', ')});
`;
const INSERT = (id: number) => `INSERT INTO typed VALUES (${id}, ${COLUMNS.map(([, , literal]) => literal).join(', ')})`;

describe('Postgres source: every type round-trips losslessly into the Redis JSON', function () {
  this.timeout(120_000);
  let pg: PgServer;
  let redis: RedisServer;
  let fixture: PgRedisFixture;

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    fixture = new PgRedisFixture(pg, redis, 'types', {
      schema: SCHEMA + INSERT(1), // row 1 is read by the snapshot, row 2 is streamed
      expectedRows: { typed: `SELECT id::text AS k, '{}' AS doc FROM typed` },
    });
    await fixture.setUp();
    await fixture.service.start();
    await fixture.sql(INSERT(2));
    await waitFor(async () => (await fixture.redis.exists(`${fixture.prefix}public.typed:2`)) === 1, { timeoutMs: 20_000, what: 'the streamed row in Redis' });
  });
  after(async () => {
    await fixture?.tearDown();
    await stopAll();
  });

  for (const [id, path] of [[1, 'snapshot'], [2, 'streaming']] as const) {
    it(`decodes every column read by ${path}`, async () => {
      const doc = JSON.parse((await fixture.redis.get(`${fixture.prefix}public.typed:${id}`))!);
      for (const [name, type, , expected] of COLUMNS) assert.deepEqual(doc[name], expected, `${name} ${type}`);
      assert.deepEqual(Object.keys(doc), ['id', ...COLUMNS.map(([name]) => name)], 'every column, in table order');
    });
  }

  it('gives text-like types exactly the text Postgres returns for them', async () => {
    // (char(n) is left out: a ::text cast strips its padding, which the column's own output keeps.)
    const textual = ['c_numeric', 'c_numeric_scaled', 'c_bigint', 'c_uuid', 'c_date', 'c_time', 'c_timetz', 'c_enum', 'c_domain'];
    const [fromPostgres] = await fixture.sql(`SELECT ${textual.map((c) => `${c}::text`).join(', ')} FROM typed WHERE id = 2`);
    const doc = JSON.parse((await fixture.redis.get(`${fixture.prefix}public.typed:2`))!);
    for (const column of textual) assert.equal(doc[column], fromPostgres[column], column);
  });
});
