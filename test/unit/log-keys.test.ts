import { strict as assert } from 'node:assert';
import { ChangeEvent } from '../../core/event/change-event';
import { compactionKeyOf, tableKeyOf } from '../../core/log/log-keys';

const event = (schema: string, table: string, op: ChangeEvent['op'], key: unknown): ChangeEvent => ({
  op, key: key as ChangeEvent['key'], before: null, after: null,
  source: { connector: 'postgresql', name: 's', db: 'd', schema, table, position: '0/1', version: '000000000000000100000001', ts_ms: 1 },
  ts_ms: 1,
});

describe('compaction keys', () => {
  // Existing segment files and Kafka topics hold keys made as JSON.stringify([schema, table, key]): the text must not change.
  it('are exactly the JSON of [schema, table, key], whatever the names and key values', () => {
    const names: [string, string][] = [['public', 'orders'], ['sales "eu"', 'line\\items'], ['ünïcode', 'テーブル'], ['a,b', '"]']];
    const keys: unknown[] = [
      { id: 1 }, { id: -0 }, { id: '12345678901234567890' }, { a: 1, b: 'x"y' }, { tenant: 'a', id: null },
      { when: '2026-12-05T01:02:03.123456Z', flag: true }, { nested: { j: [1, 2] } }, {}, undefined, { emoji: '😀\u2028' },
    ];
    for (const [schema, table] of names) {
      for (const op of ['c', 'u', 'd', 'r'] as const) {
        for (const key of keys) assert.equal(compactionKeyOf(event(schema, table, op, key)), JSON.stringify([schema, table, key]), `${schema}.${table} ${op} ${JSON.stringify(key)}`);
      }
      assert.equal(compactionKeyOf(event(schema, table, 't', {})), JSON.stringify([schema, table]), 'a truncate keys the whole table');
      assert.equal(tableKeyOf(compactionKeyOf(event(schema, table, 'u', { id: 7 }))), JSON.stringify([schema, table]), 'the table key is read back from a row key');
    }
  });
});
