import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ChangeEvent } from '../../core/event/change-event';
import { makeVersion, snapshotVersion } from '../../core/event/version';
import { debeziumConnector, debeziumRecords, debeziumTopic, parseLsn, TransactionOrder } from '../../core/log/debezium-format';

/** A sample written by hand from Debezium's documentation (see its `from` and `notes`). */
interface Fixture {
  from: string;
  topic: string;
  optional: string[];
  key: Record<string, unknown> | null;
  value: Record<string, unknown>;
  tombstone?: boolean;
}

const fixtureDir = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'debezium');
const fixture = (name: string): Fixture => JSON.parse(fs.readFileSync(path.join(fixtureDir, name), 'utf8')) as Fixture;

const RELEASE = 'tidewater-0.1.0';

/**
 * Fields whose VALUE cannot equal the sample's, by design, and why; their
 * presence and JSON type are still checked.
 */
const BY_DESIGN: Record<string, string> = {
  'source.version': 'the producer release: tidewater-<version>, not a Debezium release',
  'source.sequence': 'the last committed LSN is not in our events: [null, "<lsn>"], as Debezium allows',
  'source.ts_us': 'our commit times have millisecond precision',
  'source.ts_ns': 'our commit times have millisecond precision',
  ts_us: 'processing time with millisecond precision',
  ts_ns: 'processing time with millisecond precision',
  'source.server_id': 'MySQL UUID GTIDs do not name the origin server: 0',
  'source.thread': 'not in our events: null',
};

function jsonType(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}

/** Same field names at every level, same JSON types (null allowed where Debezium's schema says optional), same values but for BY_DESIGN. */
function assertSameShape(actual: Record<string, unknown>, expected: Record<string, unknown>, optional: string[], where = ''): void {
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort(), `field names of ${where || 'the value'}`);
  for (const [field, want] of Object.entries(expected)) {
    const got = actual[field];
    const name = where ? `${where}.${field}` : field;
    const nullable = optional.includes(field);
    if (!(nullable && (got === null || want === null))) {
      assert.equal(jsonType(got), jsonType(want), `${name}: JSON type ${jsonType(got)}, Debezium writes ${jsonType(want)}`);
    }
    if (name === 'before' || name === 'after') {
      assert.deepEqual(got, want, name);
    } else if (jsonType(want) === 'object' && jsonType(got) === 'object') {
      assertSameShape(got as Record<string, unknown>, want as Record<string, unknown>, optional, name);
    } else if (!(name in BY_DESIGN)) {
      assert.deepEqual(got, want, `${name}: ${JSON.stringify(got)} but Debezium's sample has ${JSON.stringify(want)}`);
    }
  }
}

function check(name: string, event: ChangeEvent, prefix?: string): void {
  const sample = fixture(name);
  const order = new TransactionOrder().next(event);
  const records = debeziumRecords(event, { release: RELEASE, tombstones: true }, order);
  assert.equal(debeziumTopic(event, prefix), sample.topic, 'topic');
  assert.deepEqual(records[0].key === null ? null : JSON.parse(records[0].key), sample.key, 'message key');
  const value = JSON.parse(records[0].value!) as Record<string, unknown>;
  assertSameShape(value, sample.value, sample.optional);
  assert.equal((value.source as Record<string, unknown>).version, RELEASE);
  if (sample.tombstone) {
    assert.equal(records.length, 2, 'a tombstone follows the delete');
    assert.deepEqual(records[1], { key: records[0].key, value: null });
  } else {
    assert.equal(records.length, 1);
  }
}

const customer = { id: 1, first_name: 'Anne', last_name: 'Kretchmar', email: 'annek@noanswer.org' };

function pgEvent(op: ChangeEvent['op'], lsn: bigint, txId: string, sourceTs: number, ts: number, rows: { before: Record<string, unknown> | null; after: Record<string, unknown> | null; key: Record<string, unknown> }): ChangeEvent {
  const position = `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
  return {
    op,
    ...rows,
    source: { connector: 'postgresql', name: 'PostgreSQL_server', db: 'postgres', schema: 'public', table: 'customers', position, version: makeVersion(lsn, 1), txId, ts_ms: sourceTs },
    ts_ms: ts,
  };
}

function mysqlEvent(op: ChangeEvent['op'], pos: number, sourceTs: number, ts: number, rows: { before: Record<string, unknown> | null; after: Record<string, unknown> | null; key: Record<string, unknown> }): ChangeEvent {
  return {
    op,
    ...rows,
    source: { connector: 'mysql', name: 'mysql-server-1', db: 'inventory', schema: 'inventory', table: 'customers', position: `mysql-bin.000003:${pos}`, version: makeVersion((3n << 40n) | BigInt(pos), 1), ts_ms: sourceTs },
    ts_ms: ts,
  };
}

describe('Debezium format: field by field against the documented samples', () => {
  it('Postgres create (postgresql.adoc, _create_ events)', () => {
    check('postgres-create.json', pgEvent('c', 24023128n, '555', 1559033904863, 1559033904863, { key: { id: 1 }, before: null, after: customer }));
  });

  it('Postgres delete, then a tombstone with the same key', () => {
    check('postgres-delete.json', pgEvent('d', 46523128n, '556', 1559033904863, 1465581902461, { key: { id: 1 }, before: { id: 1 }, after: null }));
  });

  it('Postgres truncate: null key, null before/after', () => {
    check('postgres-truncate.json', pgEvent('t', 46523128n, '556', 1559033904863, 1559033904961, { key: {}, before: null, after: null }));
  });

  it('MySQL create (mysql.adoc, _create_ events)', () => {
    check('mysql-create.json', mysqlEvent('c', 154, 1465491411000, 1465491411815, { key: { id: 1004 }, before: null, after: { ...customer, id: 1004 } }));
  });

  it('MySQL update (mysql.adoc, _update_ events)', () => {
    const before = { ...customer, id: 1004 };
    check('mysql-update.json', mysqlEvent('u', 484, 1465581029100, 1465581029523, { key: { id: 1004 }, before, after: { ...before, first_name: 'Anne Marie' } }));
  });
});

describe('Debezium format: details', () => {
  it('LSN text becomes the number Debezium writes', () => {
    assert.equal(parseLsn('0/16E9058'), 24023128);
    assert.equal(parseLsn('16/B374D848'), 0x16b374d848);
    assert.equal(parseLsn(''), null);
  });

  it('snapshot rows: op r, snapshot "true" (or "last"), no transaction block, txId and lsn from the snapshot', () => {
    const event: ChangeEvent = {
      op: 'r', key: { id: 1 }, before: null, after: customer,
      source: { connector: 'postgresql', name: 'pg', db: 'shop', schema: 'public', table: 'customers', position: '0/16E9058', version: snapshotVersion(24023128n), snapshot: true, ts_ms: 5 },
      ts_ms: 6,
    };
    const order = new TransactionOrder().next(event);
    const value = JSON.parse(debeziumRecords(event, { release: RELEASE, tombstones: true }, order)[0].value!);
    assert.equal(value.op, 'r');
    assert.equal(value.source.snapshot, 'true');
    assert.equal(value.source.lsn, 24023128);
    assert.equal(value.source.txId, null);
    assert.equal(value.transaction, null);
    event.source.snapshot = 'last';
    assert.equal(JSON.parse(debeziumRecords(event, { release: RELEASE, tombstones: true })[0].value!).source.snapshot, 'last');
  });

  it('MariaDB is connector "mariadb", with server_id and gtid from its GTID', () => {
    const event = mysqlEvent('c', 154, 1, 2, { key: { id: 1 }, before: null, after: { id: 1 } });
    event.source.txId = '0-7-42';
    assert.equal(debeziumConnector(event), 'mariadb');
    const value = JSON.parse(debeziumRecords(event, { release: RELEASE, tombstones: true }, new TransactionOrder().next(event))[0].value!);
    assert.equal(value.source.connector, 'mariadb');
    assert.equal(value.source.server_id, 7);
    assert.equal(value.source.gtid, '0-7-42');
    assert.deepEqual(value.transaction, { id: '0-7-42', total_order: 1, data_collection_order: 1 });
    const snapshotRow = mysqlEvent('r', 154, 1, 2, { key: { id: 1 }, before: null, after: { id: 1 } });
    snapshotRow.source.position = 'mysql-bin.000003:154@0-7-41';
    snapshotRow.source.snapshot = true;
    assert.equal(debeziumConnector(snapshotRow), 'mariadb');
    const mysqlGtid = mysqlEvent('c', 154, 1, 2, { key: { id: 1 }, before: null, after: { id: 1 } });
    mysqlGtid.source.txId = '3e11fa47-71ca-11e1-9e33-c80aa9429562:23';
    assert.equal(debeziumConnector(mysqlGtid), 'mysql');
  });

  it('transaction block: total_order over the transaction, data_collection_order per table, reset on the next transaction', () => {
    const order = new TransactionOrder();
    const at = (table: string, index: number, txId: string, commit: bigint): ChangeEvent => ({
      op: 'c', key: { id: index }, before: null, after: { id: index },
      source: { connector: 'postgresql', name: 'pg', db: 'd', schema: 'public', table, position: '0/1', version: makeVersion(commit, index), txId, ts_ms: 1 },
      ts_ms: 1,
    });
    assert.deepEqual(order.next(at('a', 1, '7', 100n)), { total: 1, perTable: 1 });
    assert.deepEqual(order.next(at('b', 2, '7', 100n)), { total: 2, perTable: 1 });
    assert.deepEqual(order.next(at('a', 3, '7', 100n)), { total: 3, perTable: 2 });
    assert.deepEqual(order.next(at('a', 1, '8', 200n)), { total: 1, perTable: 1 });
    // The same transaction replayed from its start after a restart numbers the same.
    assert.deepEqual(order.next(at('a', 1, '8', 200n)), { total: 1, perTable: 1 });
    const value = JSON.parse(debeziumRecords(at('a', 3, '7', 100n), { release: RELEASE, tombstones: true }, { total: 3, perTable: 2 })[0].value!);
    assert.deepEqual(value.transaction, { id: '7:100', total_order: 3, data_collection_order: 2 });
  });

  it('an unchanged TOAST column gets Debezium\'s placeholder, as its unavailable.value.placeholder default', () => {
    const event = pgEvent('u', 1n, '1', 1, 1, { key: { id: 1 }, before: null, after: { id: 1, name: 'x' } });
    event.unchanged = ['doc'];
    const value = JSON.parse(debeziumRecords(event, { release: RELEASE, tombstones: true })[0].value!);
    assert.deepEqual(value.after, { id: 1, name: 'x', doc: '__debezium_unavailable_value' });
  });

  it('no tombstone when tombstones are off', () => {
    const event = pgEvent('d', 1n, '1', 1, 1, { key: { id: 1 }, before: { id: 1 }, after: null });
    assert.equal(debeziumRecords(event, { release: RELEASE, tombstones: false }).length, 1);
  });
});
