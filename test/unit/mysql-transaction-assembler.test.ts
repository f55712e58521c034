import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChangeEvent } from '../../core/event/change-event';
import { sourceDetails } from '../../core/event/source-details';
import { compareVersions, makeVersion } from '../../core/event/version';
import { DecodedEvent } from '../../connectors/mysql/binlog-decoder';
import { packBinlogPosition, parseBinlogPosition } from '../../connectors/mysql/binlog-position';
import { MysqlAssemblerOptions, MysqlTransactionAssembler } from '../../connectors/mysql/transaction-assembler';
import { SourceBatch } from '../../core/contracts/source';
import { packageRoot } from '../support/kafka';

// Decoded events of a real MariaDB 10.11 binlog (see test/fixtures/mysql/record-binlog-fixture.ts for the workload).
const recorded: { workload: string[]; events: DecodedEvent[] } = JSON.parse(
  readFileSync(join(packageRoot(), 'test/fixtures/mysql/mariadb-binlog-events.json'), 'utf8'),
  (_key, value) => (value && typeof value === 'object' && typeof value.hex === 'string' ? Buffer.from(value.hex, 'hex') : value),
);
const events = recorded.events;
const captured = new Set(['shop.items', 'shop.pairs']);

function options(overrides: Partial<MysqlAssemblerOptions> = {}): MysqlAssemblerOptions {
  return {
    sourceName: 'legacy',
    isCaptured: (t) => captured.has(t),
    jsonColumns: (t) => new Set(t === 'shop.items' ? ['doc'] : []),
    primaryKey: () => undefined,
    maxBatchEvents: 10,
    ...overrides,
  };
}

function run(input: DecodedEvent[], from = 'binlog.000001:4', overrides: Partial<MysqlAssemblerOptions> = {}): SourceBatch[] {
  const assembler = new MysqlTransactionAssembler(options(overrides), parseBinlogPosition(from));
  return input.map((e) => assembler.onEvent(e)).filter((b): b is SourceBatch => b !== null);
}

const summary = (e: ChangeEvent) => `${e.op} ${e.source.table} ${JSON.stringify(e.key)}`;
/** Where the transaction containing `statement` of the workload ends, by its GTID sequence (statement n → GTID 0-1-(n+1)). */
const endOf = (gtid: string) => (events.find((e) => (e.kind === 'commit' || e.kind === 'statement') && e.gtid === gtid) as { end: { offset: number } }).end.offset;

describe('MySQL transaction assembler (recorded MariaDB binlog)', () => {
  const batches = run(events);
  const all = batches.flatMap((b) => b.events);

  it('emits each transaction with its checkpoint at the transaction end, GTID state alongside', () => {
    const multi = batches.find((b) => b.events.length === 5)!;
    assert.deepEqual(multi.events.map(summary), [
      'c items {"id":1}', 'c items {"id":2}', 'u items {"id":1}', 'c pairs {"a":1,"b":"x"}', 'd items {"id":2}',
    ], 'the uncaptured table shop.other is left out');
    assert.equal(multi.checkpoint, `binlog.000001:${endOf('0-1-5')}@0-1-5`);
    const first = multi.events[0];
    assert.deepEqual(first.after, { id: 1, name: 'one', qty: 1, doc: { k: [1, 2] }, price: '1.50', at: '2024-02-29T12:34:56.500000' });
    assert.deepEqual(multi.events[2].before, first.after);
    assert.equal(multi.events[2].after!.name, 'uno');
    assert.deepEqual(multi.events[3].after, { a: 1, b: 'x', v: '18446744073709551615' });
    assert.deepEqual(multi.events[4].before, { id: 2, name: 'two', qty: 2, doc: null, price: null, at: null });
    assert.equal(first.source.connector, 'mysql');
    assert.equal(first.source.db, 'shop');
    assert.equal(first.source.schema, 'shop');
    assert.equal(first.source.txId, '0-1-5');
    assert.equal(first.source.ts_ms, multi.commitTimeMs);
  });

  it('versions each change by (start of its transaction, index ≥ 1), increasing in commit order', () => {
    const begin = events.find((e) => e.kind === 'begin') as Extract<DecodedEvent, { kind: 'begin' }>;
    const multi = batches.find((b) => b.events.length === 5)!;
    assert.deepEqual(multi.events.map((e) => e.source.version), [1, 2, 3, 4, 5].map((i) => makeVersion(packBinlogPosition(begin.position), i)));
    for (let i = 1; i < all.length; i++) assert.equal(compareVersions(all[i - 1].source.version, all[i].source.version), -1, `${summary(all[i - 1])} before ${summary(all[i])}`);
  });

  it('turns a primary-key change into a delete of the old key and a create of the new one', () => {
    assert.deepEqual(batches.find((b) => b.checkpoint.includes('@0-1-6'))!.events.map(summary), ['d items {"id":1}', 'c items {"id":10}']);
  });

  it('moves the checkpoint past transactions and DDL that touch no captured row', () => {
    const uncaptured = batches.find((b) => b.checkpoint.includes('@0-1-7'))!;
    assert.deepEqual(uncaptured.events, []);
    assert.equal(uncaptured.checkpoint, `binlog.000001:${endOf('0-1-7')}@0-1-7`);
    assert.deepEqual(batches.find((b) => b.checkpoint.includes('@0-1-1'))!.events, [], 'CREATE DATABASE');
  });

  it('decodes rows after ALTER TABLE with the shape the binlog gives them at that point', () => {
    const added = all.find((e) => e.key.id === 3 && e.op === 'c')!;
    assert.deepEqual(added.after, { id: 3, name: 'three', qty: null, doc: null, price: null, at: null, extra: 5 });
    const afterDrop = all.find((e) => e.key.id === 3 && e.op === 'u')!;
    assert.deepEqual(afterDrop.before, { id: 3, name: 'three', doc: null, price: null, at: null, extra: 5 });
    assert.deepEqual(afterDrop.after, { id: 3, name: 'three', doc: null, price: null, at: null, extra: 6 });
  });

  it('turns TRUNCATE and DROP TABLE of a captured table into truncate events', () => {
    const truncates = all.filter((e) => e.op === 't');
    assert.deepEqual(truncates.map((e) => [e.source.table, e.key, e.before, e.after]), [['pairs', {}, null, null], ['pairs', {}, null, null]]);
    assert.equal(truncates[0].source.version, makeVersion(packBinlogPosition({ file: 'binlog.000001', offset: endOf('0-1-10') }), 1));
  });

  it('hands a transaction of big rows events over in parts of about maxBatchBytes (the bytes the decoder tells), never splitting an event', () => {
    const sized: DecodedEvent[] = events.map((e) => (e.kind === 'rows' ? { ...e, bytes: 600 } : e));
    const unbounded = run(events, 'binlog.000001:4', { maxBatchEvents: 1000 });
    const parts = run(sized, 'binlog.000001:4', { maxBatchEvents: 1000, maxBatchBytes: 1000 });
    // Every change once, in the same order, with the same versions.
    assert.deepEqual(parts.flatMap((b) => b.events.map((e) => `${summary(e)} ${e.source.version}`)), unbounded.flatMap((b) => b.events.map((e) => `${summary(e)} ${e.source.version}`)));
    // Two captured rows events of 600 bytes reach 1,000: no part holds more than two events' worth, except one rows event's rows.
    const mostRowsInOneEvent = Math.max(...sized.map((e) => (e.kind === 'rows' && captured.has(`${e.table.schema}.${e.table.table}`) ? e.rows.length : 0)));
    assert.ok(parts.length > unbounded.length, `${parts.length} parts, ${unbounded.length} without a byte bound`);
    assert.ok(parts.every((b) => b.events.length <= 2 * mostRowsInOneEvent + 1), parts.map((b) => b.events.length).join(','));
  });

  it('hands a big transaction over in parts whose checkpoint stays at the previous transaction end', () => {
    const parts = run(events, 'binlog.000001:4', { maxBatchEvents: 3 }).filter((b) => b.checkpoint.endsWith('@0-1-4') || b.checkpoint.endsWith('@0-1-5'));
    assert.deepEqual(parts.map((b) => b.events.map(summary)), [
      [], // CREATE TABLE shop.other
      ['c items {"id":1}', 'c items {"id":2}', 'u items {"id":1}'],
      ['c pairs {"a":1,"b":"x"}', 'd items {"id":2}'],
    ]);
    const [before, after] = [`binlog.000001:${endOf('0-1-4')}@0-1-4`, `binlog.000001:${endOf('0-1-5')}@0-1-5`];
    assert.deepEqual(parts.map((b) => b.checkpoint), [before, before, after]);
    // One rows event is not split (the server caps it at binlog_row_event_max_size, 8 KiB by default).
    const big = batches.filter((b) => b.events.some((e) => e.after?.b === 'big'));
    assert.deepEqual(big.map((b) => b.events.length), [25]);
    assert.deepEqual(big[0].events.map((e) => parseInt(e.source.version.slice(16), 16)), Array.from({ length: 25 }, (_, i) => i + 1));
  });

  it('replays from any saved checkpoint with the same versions', () => {
    for (const batch of batches.filter((b) => b.events.length > 0)) {
      const resumeAt = parseBinlogPosition(batch.checkpoint);
      const rest = events.slice(events.findIndex((e) => (e.kind === 'commit' || e.kind === 'statement') && e.end?.offset === resumeAt.offset) + 1);
      const replayed = run(rest, batch.checkpoint).flatMap((b) => b.events);
      const original = all.filter((e) => compareVersions(e.source.version, makeVersion(packBinlogPosition(resumeAt), 0xffffffff)) > 0);
      assert.deepEqual(replayed.map((e) => [summary(e), e.source.version]), original.map((e) => [summary(e), e.source.version]), `from ${batch.checkpoint}`);
    }
  });

  it('answers an idle binlog with an empty batch at the last boundary, never inside a transaction', () => {
    const assembler = new MysqlTransactionAssembler(options(), parseBinlogPosition('binlog.000001:4'));
    const beginAt = events.findIndex((e) => e.kind === 'begin');
    for (const e of events.slice(0, beginAt + 2)) assembler.onEvent(e);
    assert.equal(assembler.idleBatch(1000), null);
    for (const e of events.slice(beginAt + 2, events.findIndex((e) => e.kind === 'commit') + 1)) assembler.onEvent(e);
    assert.deepEqual(assembler.idleBatch(1000), { events: [], checkpoint: `binlog.000001:${endOf('0-1-5')}@0-1-5`, commitTimeMs: 1000 });
  });

  it('refuses rows of a table without a primary key, naming it', () => {
    const rows = events.find((e) => e.kind === 'rows') as Extract<DecodedEvent, { kind: 'rows' }>;
    const keyless = { ...rows, table: { ...rows.table, primaryKey: [] } };
    assert.throws(() => run([events.find((e) => e.kind === 'begin')!, keyless]), /table shop\.items has no primary key in the binlog at binlog\.000001:\d+: add one/);
    assert.equal(run([events.find((e) => e.kind === 'begin')!, keyless], 'binlog.000001:4', { primaryKey: () => ['id'] }).length, 0, 'the catalog key fills in');
  });
});

describe('MySQL transaction assembler (MySQL 8 event flavour)', () => {
  const uuid = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
  const table = { schema: 'shop', table: 'items', columns: [{ name: 'id', kind: 'integer' as const }, { name: 'v', kind: 'json' as const }], primaryKey: ['id'] };
  const stream: DecodedEvent[] = [
    { kind: 'begin', position: { file: 'mysql-bin.000007', offset: 400 }, gtid: `${uuid}:5`, timestampMs: 1_700_000_000_000 },
    { kind: 'rows', op: 'insert', table, rows: [{ before: null, after: { id: 1, v: '{"n": 18446744073709551615}' } }], timestampMs: 1_700_000_000_000 },
    { kind: 'commit', end: { file: 'mysql-bin.000007', offset: 700 }, gtid: `${uuid}:5`, timestampMs: 1_700_000_001_000 },
    { kind: 'statement', sql: 'TRUNCATE TABLE items', schema: 'shop', end: { file: 'mysql-bin.000008', offset: 300 }, gtid: `${uuid}:6`, timestampMs: 1_700_000_002_000 },
  ];

  it('extends the MySQL GTID set of the saved position with each transaction', () => {
    const batches = run(stream, `mysql-bin.000007:400@${uuid}:1-4`, { isCaptured: () => true });
    assert.deepEqual(batches.map((b) => b.checkpoint), [`mysql-bin.000007:700@${uuid}:1-5`, `mysql-bin.000008:300@${uuid}:1-6`]);
    assert.deepEqual(batches[0].events[0].after, { id: 1, v: { n: '18446744073709551615' } });
    assert.equal(batches[0].events[0].source.txId, `${uuid}:5`);
    assert.equal(batches[0].commitTimeMs, 1_700_000_001_000);
    assert.deepEqual(batches[1].events.map((e) => [e.op, e.source.version]), [['t', makeVersion(packBinlogPosition({ file: 'mysql-bin.000008', offset: 300 }), 1)]]);
  });

  it('without source details (a log publishing no Debezium topics) the events are the same, only the details are left out', () => {
    const all = (overrides: Partial<MysqlAssemblerOptions>) => run(events, undefined, overrides).flatMap((b) => b.events);
    const withDetails = all({});
    const without = all({ sourceDetails: false });
    const native = (e: ChangeEvent) => JSON.stringify({ ...e, ts_ms: 0 });
    assert.ok(withDetails.length > 10);
    assert.deepEqual(without.map(native), withDetails.map(native));
    const rowChanges = (list: ChangeEvent[]) => list.filter((e) => e.op !== 't');
    assert.ok(rowChanges(withDetails).every((e) => sourceDetails(e)?.columnTypes));
    assert.ok(rowChanges(without).every((e) => sourceDetails(e) === undefined));
  });
});
