import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { ChangeEvent, keyString } from '../../core/event/change-event';
import { partitionOfKey, partitionOfRow, partitionsOf } from '../../core/log/partitioner';

// Logs on disk and Kafka topics already hold rows by this hash: the function must never change.
const wholeText = (schema: string, table: string, key: string, n: number) => crc32(`${schema}.${table}\u0000${key}`) % n;

const event = (schema: string, table: string, key: Record<string, unknown>, op: ChangeEvent['op'] = 'c'): ChangeEvent => ({
  op, key: key as ChangeEvent['key'], before: null, after: null, ts_ms: 0,
  source: { connector: 'postgresql', name: 's', db: 'd', schema, table, position: '0/0', version: '0'.repeat(24), ts_ms: 0 },
});

describe('partitioner: where a row goes', () => {
  it('puts a row where the checksum of "schema.table\\0key" says, for every key and table (unicode included)', () => {
    const tables: [string, string][] = [['public', 'orders'], ['shop', 'order_items'], ['ünïcode', 'täble ✓'], ['a', '']];
    const keys = ['', '0', '42', '-1', 'a:b', 'a\\:b:c', 'ключ', '🙂', 'x'.repeat(3000)];
    for (let i = 0; i < 500; i++) keys.push(String(Math.floor(Math.random() * 1e12)));
    for (const [schema, table] of tables) {
      for (const key of keys) {
        for (const n of [1, 4, 7, 16]) assert.equal(partitionOfKey(schema, table, key, n), wholeText(schema, table, key, n), `${schema}.${table} ${key} /${n}`);
      }
    }
  });

  it('gives a row change one partition, from its key as keyString() spells it, and a truncate every partition', () => {
    for (const key of [{ id: 7 }, { id: 'a:b' }, { a: 1, b: 'x:y' }, { a: null, b: { j: 1 } }]) {
      const e = event('public', 'orders', key);
      assert.equal(partitionOfRow(e, 8), wholeText('public', 'orders', keyString(e.key), 8));
      assert.deepEqual(partitionsOf(e, 8), [partitionOfRow(e, 8)]);
    }
    assert.deepEqual(partitionsOf(event('public', 'orders', {}, 't'), 3), [0, 1, 2]);
  });

  it('spells keys as before: one column as its value, several joined by ":" with ":" and "\\" escaped', () => {
    assert.equal(keyString({ id: 42 }), '42');
    assert.equal(keyString({ id: null }), '');
    assert.equal(keyString({ id: { a: 1 } }), '{"a":1}');
    assert.equal(keyString({ a: 'a:b', b: 'c' }), 'a\\:b:c');
    assert.equal(keyString({ a: 'a', b: 'b:c\\' }), 'a:b\\:c\\\\');
    assert.equal(keyString({}), '');
  });
});
