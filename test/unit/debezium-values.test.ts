import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ChangeEvent } from '../../core/event/change-event';
import { addSourceDetails, markSnapshotChunk } from '../../core/event/source-details';
import { makeVersion } from '../../core/event/version';
import { DecimalHandling } from '../../core/log/debezium/decimal';
import { debeziumRecords, debeziumValues, NEW_KEY_HEADER, OLD_KEY_HEADER, TransactionOrder } from '../../core/log/debezium-format';
import { messagesOf } from '../../core/log/kafka-codec';
import { kafkaFeatures } from '../../core/log/kafka-features';
import { kafkaLogConfig } from '../../core/log/log-config';

/** test/fixtures/debezium/value-types.json: per column type, our value and the one Debezium writes (see its `from` and `notes`). */
interface ValueCase {
  type: string;
  event: unknown;
  debezium: unknown;
  asJsonText?: boolean;
  documented?: string;
  rule?: string;
}
const fixtures = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'debezium', 'value-types.json'), 'utf8')) as { postgresql: ValueCase[]; mysql: ValueCase[] };

const RELEASE = 'tidewater-test';

function eventOf(connector: 'postgresql' | 'mysql', columnTypes: Record<string, string>, after: Record<string, unknown>, op: ChangeEvent['op'] = 'c'): ChangeEvent {
  const event: ChangeEvent = {
    op,
    key: { id: after.id },
    before: op === 'c' ? null : after,
    after: op === 'd' ? null : after,
    source: connector === 'postgresql'
      ? { connector, name: 'pg', db: 'shop', schema: 'public', table: 't', position: '0/16E9058', version: makeVersion(24023128n, 1), txId: '555', ts_ms: 1 }
      : { connector, name: 'my', db: 'shop', schema: 'shop', table: 't', position: 'mysql-bin.000003:154', version: makeVersion(1n, 1), ts_ms: 1 },
    ts_ms: 2,
  };
  return addSourceDetails(event, { columnTypes: Object.freeze({ ...columnTypes }) });
}

function valueText(event: ChangeEvent, decimals: DecimalHandling = 'precise'): string {
  return debeziumRecords(event, { release: RELEASE, tombstones: true, values: debeziumValues(decimals) }, new TransactionOrder().next(event))[0].value!;
}

/** The JSON text of `after.v` in the message value (so 64-bit digits are compared exactly). */
function rawAfterField(text: string, field: string): string {
  const after = text.slice(text.indexOf('"after":'));
  const match = new RegExp(`"${field}":(-?\\d+|"[^"]*"|true|false|null|\\{[^}]*\\}|\\[[^\\]]*\\])`).exec(after);
  assert.ok(match, `field ${field} in ${after.slice(0, 200)}`);
  return match[1];
}

describe('Debezium format: row values per column type, against the documented mappings (value-types.json)', () => {
  for (const connector of ['postgresql', 'mysql'] as const) {
    for (const c of fixtures[connector]) {
      it(`${connector} ${c.type}: ${JSON.stringify(c.event)} → ${JSON.stringify(c.debezium)} (${c.documented ? 'documented example' : c.rule})`, () => {
        const text = valueText(eventOf(connector, { id: connector === 'postgresql' ? 'int4' : 'int(11)', v: c.type }, { id: 1, v: c.event }));
        if (c.asJsonText) assert.equal(rawAfterField(text, 'v'), String(c.debezium), 'exact digits of an INT64');
        else assert.deepEqual(JSON.parse(text).after.v, c.debezium);
      });
    }
  }
});

describe('Debezium format: value details', () => {
  it('log.debezium.decimalHandling: precise by default, string or double, anything else refused', () => {
    const base = { type: 'kafka', brokers: ['127.0.0.1:9092'], format: 'debezium' };
    const parsed = kafkaLogConfig.parse(base);
    assert.equal(parsed.debezium.decimalHandling, 'precise');
    assert.equal(kafkaFeatures(kafkaLogConfig.parse({ ...base, debezium: { decimalHandling: 'string' } })).debezium?.decimalHandling, 'string');
    const refused = kafkaLogConfig.safeParse({ ...base, debezium: { decimalHandling: 'exact' } });
    assert.equal(refused.success, false);
    assert.match(JSON.stringify(refused.error?.issues), /precise.*string.*double/);
  });

  it('decimal.handling.mode string and double', () => {
    const event = eventOf('postgresql', { id: 'int4', fixed: 'numeric(10,2)', free: 'numeric' }, { id: 1, fixed: '1.50', free: '1.500' });
    assert.deepEqual(JSON.parse(valueText(event, 'string')).after, { id: 1, fixed: '1.50', free: '1.500' });
    assert.deepEqual(JSON.parse(valueText(event, 'double')).after, { id: 1, fixed: 1.5, free: 1.5 });
    const mysql = eventOf('mysql', { id: 'int(11)', d: 'decimal(10,3)' }, { id: 1, d: '-0.500' });
    assert.deepEqual(JSON.parse(valueText(mysql, 'string')).after.d, '-0.500');
    assert.deepEqual(JSON.parse(valueText(mysql, 'precise')).after.d, Buffer.from([0xfe, 0x0c]).toString('base64'), 'unscaled -500');
  });

  it('JSON columns are the document text as the source sent it (io.debezium.data.Json), the key is converted like the row', () => {
    const event = eventOf('postgresql', { id: 'int8', doc: 'jsonb' }, { id: '9007199254740993', doc: { a: 1, b: [1, 2] } });
    addSourceDetails(event, { jsonText: { after: { doc: '{"a": 1, "b": [1, 2]}' } } });
    const [record] = debeziumRecords(event, { release: RELEASE, tombstones: true });
    assert.equal(record.key, '{"id":9007199254740993}');
    assert.equal(JSON.parse(record.value!).after.doc, '{"a": 1, "b": [1, 2]}');
    // Without the text (an event from before this existed), the parsed document is written back as JSON.
    const bare = eventOf('mysql', { id: 'int(11)', doc: 'json' }, { id: 1, doc: { a: 1 } });
    assert.equal(JSON.parse(valueText(bare)).after.doc, '{"a":1}');
  });

  it('unchanged TOAST columns: Debezium\'s placeholder in the column\'s own type (UnchangedToastedPlaceholder)', () => {
    const types = { id: 'int4', doc: 'text', blob: 'bytea', tags: 'text[]', nums: 'int4[]', ids: 'uuid[]' };
    const event = eventOf('postgresql', types, { id: 1 }, 'u');
    event.unchanged = ['doc', 'blob', 'tags', 'nums', 'ids'];
    const after = JSON.parse(valueText(event)).after;
    const placeholder = '__debezium_unavailable_value';
    assert.equal(after.doc, placeholder);
    assert.equal(after.blob, 'X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==', 'the placeholder\'s bytes');
    assert.deepEqual(after.tags, [placeholder]);
    assert.deepEqual(after.nums, [...Buffer.from(placeholder)]);
    assert.deepEqual(after.ids, ['b68a35a7-17ad-35b3-af2a-ae46edb4545a'], 'UUID.nameUUIDFromBytes of the placeholder');
  });

  it('events without column types keep their values as the event holds them', () => {
    const event = eventOf('postgresql', {}, { id: '12', n: '1.50' });
    assert.deepEqual(JSON.parse(valueText(event)).after, { id: '12', n: '1.50' });
  });

  it('resync rows say snapshot "incremental"; initial snapshot rows "true"', () => {
    const row = eventOf('postgresql', { id: 'int4' }, { id: 1 }, 'r');
    row.source.snapshot = true;
    assert.equal(JSON.parse(valueText(row)).source.snapshot, 'true');
    addSourceDetails(row, { resync: true });
    assert.equal(JSON.parse(valueText(row)).source.snapshot, 'incremental');
  });

  it('snapshot marks as Debezium 2+: first, first_in_data_collection, last_in_data_collection, last (last wins, then first)', () => {
    const chunk = (n: number) => Array.from({ length: n }, (_, i) => Object.assign(eventOf('postgresql', { id: 'int4' }, { id: i }, 'r'), {}));
    const marks = (rows: ChangeEvent[]) => rows.map((e) => { e.source.snapshot = true; return JSON.parse(valueText(e)).source.snapshot; });
    const a = chunk(3);
    markSnapshotChunk(a, { tableFirst: true, tableLast: false, snapshotFirst: true, snapshotLast: false });
    assert.deepEqual(marks(a), ['first', 'true', 'true']);
    const b = chunk(3);
    markSnapshotChunk(b, { tableFirst: false, tableLast: true, snapshotFirst: false, snapshotLast: false });
    assert.deepEqual(marks(b), ['true', 'true', 'last_in_data_collection']);
    const c = chunk(2);
    markSnapshotChunk(c, { tableFirst: true, tableLast: true, snapshotFirst: false, snapshotLast: true });
    assert.deepEqual(marks(c), ['first_in_data_collection', 'last']);
    const one = chunk(1);
    markSnapshotChunk(one, { tableFirst: true, tableLast: true, snapshotFirst: false, snapshotLast: false });
    assert.deepEqual(marks(one), ['last_in_data_collection'], 'a one-row table: last in table wins over first');
    const resync = chunk(1);
    markSnapshotChunk(resync, { tableFirst: true, tableLast: true, snapshotFirst: true, snapshotLast: true });
    addSourceDetails(resync[0], { resync: true });
    assert.deepEqual(marks(resync), ['incremental'], 'resync rows are incremental whatever their place');
  });

  it('Postgres source.sequence is ["<last commit end LSN>","<lsn>"] as decimal strings', () => {
    const event = addSourceDetails(eventOf('postgresql', { id: 'int4' }, { id: 1 }), { lastCommitLsn: '0/16E9000' });
    const source = JSON.parse(valueText(event)).source;
    assert.equal(source.sequence, '["24023040","24023128"]');
    assert.equal(source.lsn, 24023128);
    assert.equal(source.txId, 555);
  });

  it('MySQL source.thread and server_id from the source details', () => {
    const event = addSourceDetails(eventOf('mysql', { id: 'int(11)' }, { id: 1 }), { thread: 7, serverId: 223344 });
    const source = JSON.parse(valueText(event)).source;
    assert.equal(source.thread, 7);
    assert.equal(source.server_id, 223344);
  });

  it('a primary-key change: delete + tombstone with __debezium.newkey, create with __debezium.oldkey', () => {
    const types = { id: 'int8', name: 'text' };
    const gone = eventOf('postgresql', types, { id: '1', name: 'a' }, 'd');
    const came = eventOf('postgresql', types, { id: '2', name: 'a' }, 'c');
    addSourceDetails(gone, { columnTypes: Object.freeze(types), newKey: came.key });
    addSourceDetails(came, { columnTypes: Object.freeze(types), oldKey: gone.key });
    const deleted = debeziumRecords(gone, { release: RELEASE, tombstones: true });
    assert.equal(deleted.length, 2);
    for (const record of deleted) assert.deepEqual(record.headers, { [NEW_KEY_HEADER]: '{"id":2}' });
    assert.equal(deleted[0].key, '{"id":1}');
    const [created] = debeziumRecords(came, { release: RELEASE, tombstones: true });
    assert.deepEqual(created.headers, { [OLD_KEY_HEADER]: '{"id":1}' });
    assert.equal(created.key, '{"id":2}');
  });

  it('the truncate a snapshot writes below its rows is not written to the Debezium topic (Debezium has none)', () => {
    const truncate = eventOf('postgresql', {}, { id: 1 }, 't');
    truncate.source.snapshot = true;
    assert.deepEqual(debeziumRecords(truncate, { release: RELEASE, tombstones: true }), []);
    truncate.source.snapshot = undefined;
    assert.equal(debeziumRecords(truncate, { release: RELEASE, tombstones: true }).length, 1, 'a TRUNCATE statement is');
  });

  it('a table without a primary key (REPLICA IDENTITY FULL) gets a null message key, as Debezium writes it', () => {
    const event = addSourceDetails(eventOf('postgresql', { id: 'int4' }, { id: 1 }, 'd'), { noPrimaryKey: true });
    const records = debeziumRecords(event, { release: RELEASE, tombstones: true });
    assert.deepEqual(records.map((r) => r.key), [null, null]);
    assert.equal(JSON.parse(records[0].value!).before.id, 1);
  });

  it('source details never reach the native log record', () => {
    const event = addSourceDetails(eventOf('postgresql', { id: 'int4' }, { id: 1 }), { lastCommitLsn: '0/1', resync: true, thread: 3 });
    const copy = { ...event };
    const [message] = messagesOf(copy, 'native', 1, true);
    assert.deepEqual(JSON.parse(message.value!), JSON.parse(JSON.stringify({ ...event })));
    assert.ok(!message.value!.includes('lastCommitLsn') && !message.value!.includes('int4'), message.value!);
    assert.equal(JSON.parse(valueText(copy)).source.snapshot, 'false', 'a copy made by spread keeps the details');
    assert.ok(valueText(copy).includes('"sequence":"[\\"1\\",'), 'the spread copy still carries lastCommitLsn');
  });
});
