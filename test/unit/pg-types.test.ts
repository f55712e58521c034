import { strict as assert } from 'node:assert';
import { decodeValue, PgType } from '../../connectors/postgres/types';

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/** OIDs our decoder does not list in PgType: they must come through as text. */
const UUID_OID = 2950;
const TEXT_OID = 25;
const VARCHAR_OID = 1043;
const INTERVAL_OID = 1186;

type Case = [text: string, expected: unknown];

/**
 * One `it` per text form: the Postgres text (DateStyle=ISO, TimeZone=UTC,
 * extra_float_digits=3) must decode to exactly `expected` (deepEqual is
 * strict: 1 !== '1', NaN is compared by Object.is).
 */
function decodes(typeName: string, typeOid: number, cases: Case[]): void {
  for (const [text, expected] of cases) {
    it(`${typeName} ${JSON.stringify(text)} → ${typeof expected === 'string' ? JSON.stringify(expected) : String(expected)}`, () => {
      assert.deepEqual(decodeValue(typeOid, text), expected);
    });
  }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

describe('Postgres value decoding (connectors/postgres/types.ts decodeValue)', () => {
  describe('integers', () => {
    decodes('int2', PgType.int2, [
      ['0', 0],
      ['-32768', -32768],
      ['32767', 32767],
    ]);
    decodes('int4', PgType.int4, [
      ['42', 42],
      ['-2147483648', -2147483648],
      ['2147483647', 2147483647],
    ]);

    describe('int8 stays a string (JSON numbers lose digits above 2^53)', () => {
      decodes('int8', PgType.int8, [
        ['9223372036854775807', '9223372036854775807'],
        ['-9223372036854775808', '-9223372036854775808'],
        ['9007199254740993', '9007199254740993'],
        ['1', '1'],
      ]);
    });
  });

  describe('numeric stays a string, all digits kept', () => {
    decodes('numeric', PgType.numeric, [
      ['12345678901234567890.123456789012345678', '12345678901234567890.123456789012345678'],
      ['0.10', '0.10'],
      ['-1.000', '-1.000'],
      ['NaN', 'NaN'],
    ]);
  });

  describe('floating point', () => {
    describe('NaN and ±Infinity keep their Postgres spelling (JSON has no such numbers)', () => {
      decodes('float8', PgType.float8, [
        ['NaN', 'NaN'],
        ['Infinity', 'Infinity'],
        ['-Infinity', '-Infinity'],
      ]);
      decodes('float4', PgType.float4, [
        ['NaN', 'NaN'],
        ['Infinity', 'Infinity'],
        ['-Infinity', '-Infinity'],
      ]);
    });

    describe('finite values become numbers, with the shortest round-trip digits preserved', () => {
      decodes('float8', PgType.float8, [
        ['1.5', 1.5],
        ['0.30000000000000004', 0.30000000000000004],
        ['-0.1', -0.1],
        ['1e+300', 1e300],
        ['5e-324', 5e-324],
      ]);
      decodes('float4', PgType.float4, [['1.5', 1.5]]);
    });

    it('decoded finite float8 values survive JSON serialization', () => {
      const value = decodeValue(PgType.float8, '0.30000000000000004');
      assert.equal(JSON.parse(JSON.stringify({ value })).value, 0.30000000000000004);
      const nan = decodeValue(PgType.float8, 'NaN');
      assert.equal(JSON.stringify({ nan }), '{"nan":"NaN"}');
    });
  });

  describe('bool', () => {
    decodes('bool', PgType.bool, [
      ['t', true],
      ['f', false],
    ]);
  });

  describe('bytea (hex text form) becomes base64', () => {
    decodes('bytea', PgType.bytea, [
      ['\\x00ff10', 'AP8Q'],
      ['\\x', ''],
      ['\\x68656c6c6f', Buffer.from('hello').toString('base64')],
    ]);
  });

  describe('json and jsonb become parsed JSON', () => {
    const nested = '{"a": [1, 2, {"b": null, "c": true}], "big": "12345678901234567890", "s": "x"}';
    const expected = { a: [1, 2, { b: null, c: true }], big: '12345678901234567890', s: 'x' };
    decodes('json', PgType.json, [
      [nested, expected],
      ['[1, "two", 3.5]', [1, 'two', 3.5]],
      ['"just a string"', 'just a string'],
      ['null', null],
    ]);
    decodes('jsonb', PgType.jsonb, [
      [nested, expected],
      ['{"k": {"deeper": {"deepest": [false]}}}', { k: { deeper: { deepest: [false] } } }],
    ]);

    it('a big number held as a JSON string stays a string', () => {
      const value = decodeValue(PgType.jsonb, '{"id": "9223372036854775807"}') as { id: unknown };
      assert.equal(typeof value.id, 'string');
      assert.equal(value.id, '9223372036854775807');
    });
  });

  describe('timestamp (without time zone) becomes ISO-8601 with six fractional digits', () => {
    decodes('timestamp', PgType.timestamp, [
      ['2024-01-02 03:04:05.123456', '2024-01-02T03:04:05.123456'],
      ['2024-01-02 03:04:05.12', '2024-01-02T03:04:05.120000'],
      ['2024-01-02 03:04:05', '2024-01-02T03:04:05.000000'],
      ['2024-01-02 03:04:05.000001', '2024-01-02T03:04:05.000001'],
      ['infinity', 'infinity'],
      ['-infinity', '-infinity'],
    ]);

    it('equal precision means strings sort by time', () => {
      const texts = ['2024-01-02 03:04:05.5', '2024-01-02 03:04:05', '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.12'];
      const decoded = texts.map((t) => decodeValue(PgType.timestamp, t) as string).sort();
      assert.deepEqual(decoded, [
        '2024-01-02T03:04:05.000000',
        '2024-01-02T03:04:05.120000',
        '2024-01-02T03:04:05.123456',
        '2024-01-02T03:04:05.500000',
      ]);
    });
  });

  describe('timestamptz becomes ISO-8601 with six fractional digits and its offset', () => {
    decodes('timestamptz', PgType.timestamptz, [
      ['2024-01-02 03:04:05.5+00', '2024-01-02T03:04:05.500000Z'],
      ['2024-01-02 03:04:05.123456+00', '2024-01-02T03:04:05.123456Z'],
      ['2024-01-02 03:04:05+00', '2024-01-02T03:04:05.000000Z'],
      ['2024-01-02 03:04:05.5+05:30', '2024-01-02T03:04:05.500000+05:30'],
      ['2024-01-02 03:04:05-08', '2024-01-02T03:04:05.000000-08:00'],
      ['infinity', 'infinity'],
      ['-infinity', '-infinity'],
    ]);

    it('the result is accepted by Date.parse at the right instant (to the millisecond)', () => {
      const iso = decodeValue(PgType.timestamptz, '2024-01-02 03:04:05.5+05:30') as string;
      assert.equal(Date.parse(iso), Date.UTC(2024, 0, 1, 21, 34, 5, 500));
    });
  });

  describe('unknown OIDs stay text', () => {
    decodes('uuid (2950)', UUID_OID, [['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11']]);
    decodes('text (25)', TEXT_OID, [
      ['hello', 'hello'],
      ['', ''],
      ['123', '123'],
      ['t', 't'],
    ]);
    decodes('varchar (1043)', VARCHAR_OID, [['{"not": "json"}', '{"not": "json"}']]);
    decodes('interval (1186)', INTERVAL_OID, [['1 day 02:03:04', '1 day 02:03:04']]);
  });
});
