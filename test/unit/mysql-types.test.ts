import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { columnShape, normalizeValue, shortestFloat32 } from '../../connectors/mysql/types';
import { packageRoot } from '../support/kafka';
import { seededRandom } from '../support/seeded-random';

interface Case {
  type: string;
  json_column?: boolean;
  binlog: unknown;
  query: unknown;
  json: unknown;
}

const fixtures: { cases: Case[] } = JSON.parse(readFileSync(join(packageRoot(), 'test/fixtures/mysql/raw-values.json'), 'utf8'));

/** `{ "hex": "..." }` in the fixture file stands for a Buffer. */
function raw(value: unknown): unknown {
  if (value && typeof value === 'object' && 'hex' in value) return Buffer.from((value as { hex: string }).hex, 'hex');
  return value;
}

describe('MySQL value types', () => {
  it('give the same lossless JSON value for a row read by the snapshot and decoded from the binlog', () => {
    for (const c of fixtures.cases) {
      const column = columnShape('c', c.type, c.json_column);
      const what = `${c.type}${c.json_column ? ' (JSON)' : ''} ${JSON.stringify(c.binlog)}`;
      assert.deepEqual(normalizeValue(column, raw(c.binlog)), c.json, `binlog ${what}`);
      assert.deepEqual(normalizeValue(column, raw(c.query)), c.json, `query ${what}`);
    }
  });

  it('read column types as information_schema and the binlog metadata spell them', () => {
    assert.deepEqual(columnShape('b', 'bit(10)'), { name: 'b', kind: 'bit', bits: 10, type: 'bit(10)' });
    assert.equal(columnShape('i', 'bigint(20) unsigned').kind, 'bigint');
    assert.equal(columnShape('i', 'int unsigned').kind, 'integer');
    assert.equal(columnShape('d', 'decimal(65,30)').kind, 'decimal');
    assert.equal(columnShape('t', 'mediumtext').kind, 'text');
    assert.equal(columnShape('t', 'longtext', true).kind, 'json');
    assert.equal(columnShape('b', 'longblob').kind, 'binary');
    assert.equal(columnShape('e', "enum('a','b')").kind, 'enum');
    assert.equal(columnShape('s', "set('a')").kind, 'set');
    assert.equal(columnShape('ts', 'timestamp(6)').kind, 'timestamp');
    assert.equal(columnShape('g', 'point').kind, 'other');
  });

  it('print FLOAT as the shortest decimal that reads back as the same float32', () => {
    const random = seededRandom(7);
    for (let i = 0; i < 2000; i++) {
      const bits = Math.floor(random() * 0xffffffff);
      const single = new Float32Array(new Uint32Array([bits]).buffer)[0];
      if (!Number.isFinite(single)) continue;
      const printed = shortestFloat32(single);
      assert.equal(Math.fround(printed), single, `${single} printed as ${printed}`);
      const digits = (n: number) => n.toExponential().replace(/^-|e.*$|\./g, '').length;
      assert.ok(digits(printed) <= digits(single), `${printed} is no longer than the double ${single}`);
    }
  });

  it('pass unknown types through, binary ones as base64', () => {
    assert.equal(normalizeValue({ name: 'g', kind: 'other' }, Buffer.from([1, 2])), 'AQI=');
    assert.equal(normalizeValue({ name: 'g', kind: 'other' }, 'x'), 'x');
  });
});

