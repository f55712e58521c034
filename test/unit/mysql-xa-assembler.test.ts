import { strict as assert } from 'node:assert';
import { makeVersion } from '../../core/event/version';
import { DecodedEvent, TableShape } from '../../connectors/mysql/binlog-decoder';
import { packBinlogPosition, parseBinlogPosition } from '../../connectors/mysql/binlog-position';
import { MysqlTransactionAssembler } from '../../connectors/mysql/transaction-assembler';
import { SourceBatch } from '../../core/contracts/source';

// The event groups MariaDB 10.11 writes for XA (seen with SHOW BINLOG EVENTS on a throwaway server):
//   Gtid (XA START, prepared-XA flag) · rows · Query "XA END X'6131',X'',1" · XA_prepare
//   Gtid (standalone) · Query "XA COMMIT X'6131',X'',1"   (or "XA ROLLBACK ...")
const items: TableShape = { schema: 'shop', table: 'items', columns: [{ name: 'id', kind: 'integer' }, { name: 'n', kind: 'integer' }], primaryKey: ['id'] };
const at = (offset: number) => ({ file: 'binlog.000002', offset });
const xid = (name: string) => `X'${Buffer.from(name).toString('hex')}',X'',1`;

function xaPrepare(name: string, id: number, start: number): DecodedEvent[] {
  return [
    { kind: 'begin', position: at(start), gtid: null, timestampMs: 1000, xa: true },
    { kind: 'rows', op: 'insert', table: items, rows: [{ before: null, after: { id, n: id } }], timestampMs: 1000 },
    { kind: 'statement', sql: `XA END ${xid(name)}`, schema: 'shop', end: null, gtid: null, timestampMs: 1000 },
    { kind: 'commit', end: at(start + 50), gtid: null, timestampMs: 1000, xaPrepare: true },
  ];
}
const xaOutcome = (verb: 'COMMIT' | 'ROLLBACK', name: string, end: number): DecodedEvent => ({ kind: 'statement', sql: `XA ${verb} ${xid(name)}`, schema: '', end: at(end), gtid: null, timestampMs: 3000 });
const plain = (id: number, start: number): DecodedEvent[] => [
  { kind: 'begin', position: at(start), gtid: null, timestampMs: 2000 },
  { kind: 'rows', op: 'insert', table: items, rows: [{ before: null, after: { id, n: id } }], timestampMs: 2000 },
  { kind: 'commit', end: at(start + 50), gtid: null, timestampMs: 2000 },
];

function run(input: DecodedEvent[], maxBatchEvents = 100): SourceBatch[] {
  const assembler = new MysqlTransactionAssembler(
    { sourceName: 'legacy', isCaptured: (t) => t === 'shop.items', jsonColumns: () => new Set(), primaryKey: () => undefined, maxBatchEvents },
    parseBinlogPosition('binlog.000002:4'),
  );
  return input.map((e) => assembler.onEvent(e)).filter((b): b is SourceBatch => b !== null);
}

describe('MySQL transaction assembler: XA transactions', () => {
  it('holds a prepared transaction, emits it at XA COMMIT with the commit group\'s version, and keeps the checkpoint before its XA START meanwhile', () => {
    const batches = run([...xaPrepare('a', 1, 100), ...plain(2, 200), xaOutcome('COMMIT', 'a', 400)]);
    const summary = batches.map((b) => [b.events.map((e) => `${e.op} ${e.key.id}`), b.checkpoint]);
    assert.deepEqual(summary, [
      [[], 'binlog.000002:4'], // the prepare: nothing yet, and a restart would read it again
      [['c 2'], 'binlog.000002:4'],
      [['c 1'], 'binlog.000002:400'],
    ]);
    const committed = batches[2].events[0];
    assert.equal(committed.source.version, makeVersion(packBinlogPosition(at(400)), 1));
    assert.equal(committed.source.position, 'binlog.000002:400');
    assert.equal(committed.source.ts_ms, 3000, 'the commit time of XA COMMIT');
  });

  it('drops a transaction rolled back after its prepare, and is not fooled into partial batches by a big one', () => {
    const big: DecodedEvent[] = [
      { kind: 'begin', position: at(100), gtid: null, timestampMs: 1000, xa: true },
      ...[1, 2, 3].map((id): DecodedEvent => ({ kind: 'rows', op: 'insert', table: items, rows: [{ before: null, after: { id, n: id } }], timestampMs: 1000 })),
      { kind: 'statement', sql: `XA END ${xid('b')}`, schema: 'shop', end: null, gtid: null, timestampMs: 1000 },
      { kind: 'commit', end: at(150), gtid: null, timestampMs: 1000, xaPrepare: true },
    ];
    const batches = run([...big, xaOutcome('ROLLBACK', 'b', 300), ...plain(4, 400)], 1);
    assert.deepEqual(batches.flatMap((b) => b.events.map((e) => `${e.op} ${e.key.id}`)), ['c 4']);
    assert.equal(batches[batches.length - 1].checkpoint, 'binlog.000002:450');
  });

  it('commits a one-phase XA transaction (MySQL: XA END, then XA COMMIT ... ONE PHASE ends the group) at once', () => {
    const batches = run([
      { kind: 'begin', position: at(100), gtid: null, timestampMs: 1000, xa: true },
      { kind: 'rows', op: 'insert', table: items, rows: [{ before: null, after: { id: 5, n: 5 } }], timestampMs: 1000 },
      { kind: 'statement', sql: `XA END ${xid('c')}`, schema: 'shop', end: null, gtid: null, timestampMs: 1000 },
      { kind: 'commit', end: at(200), gtid: null, timestampMs: 1000 },
    ]);
    assert.deepEqual(batches.map((b) => [b.events.map((e) => `${e.op} ${e.key.id}`), b.checkpoint]), [[['c 5'], 'binlog.000002:200']]);
  });
});
