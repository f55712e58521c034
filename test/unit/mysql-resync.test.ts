import { strict as assert } from 'node:assert';
import { ChangeEvent, Row } from '../../core/event/change-event';
import { makeVersion } from '../../core/event/version';
import { DecodedEvent, TableShape } from '../../connectors/mysql/binlog-decoder';
import { packBinlogPosition, parseBinlogPosition } from '../../connectors/mysql/binlog-position';
import { MysqlCheckpoint, parseCheckpoint, serializeCheckpoint } from '../../connectors/mysql/checkpoint';
import { mysqlSourceConfig, watermarkTableOf } from '../../connectors/mysql/config';
import { chunkParameters, chunkQuery } from '../../connectors/mysql/snapshot';
import { MysqlTransactionAssembler, WatermarkTransaction } from '../../connectors/mysql/transaction-assembler';
import { readWatermark } from '../../connectors/mysql/watermark-table';

describe('MySQL resync: checkpoints', () => {
  it('carry the queued tasks beside the position, and drop back to the plain position when none is left', () => {
    const position = parseBinlogPosition('binlog.000003:4@0-1-42');
    const checkpoint: MysqlCheckpoint = {
      position,
      resync: [
        { requestId: 'r1', table: 'shop.items', rows: 40, afterKey: [40, { base64: 'AP8=' }] },
        { requestId: 'r1', table: 'shop.pairs', where: "b > 'x'", rows: 0 },
      ],
    };
    const text = serializeCheckpoint(checkpoint);
    assert.deepEqual(JSON.parse(text).position, 'binlog.000003:4@0-1-42');
    assert.deepEqual(parseCheckpoint(text), checkpoint);
    assert.equal(serializeCheckpoint({ position, resync: [] }), 'binlog.000003:4@0-1-42');
  });
});

describe('MySQL resync: chunk query', () => {
  it('adds the operator condition to the keyset range, in parentheses that a trailing comment cannot break', () => {
    const columns = [{ name: 'a', kind: 'integer' as const }, { name: 'b', kind: 'float' as const }];
    assert.equal(
      chunkQuery('shop.t', columns, ['a'], true, 50, 'b > 1 -- big ones'),
      'SELECT `a`, `b` + 0e0 AS `b` FROM `shop`.`t` WHERE ((`a` > ?)) AND (b > 1 -- big ones\n) ORDER BY `a` LIMIT 50',
    );
    assert.equal(chunkQuery('shop.t', columns, ['a'], false, 50, 'a < 3'), 'SELECT `a`, `b` + 0e0 AS `b` FROM `shop`.`t` WHERE (a < 3\n) ORDER BY `a` LIMIT 50');
    assert.equal(chunkQuery('shop.t', columns, ['a', 'b'], true, 5), 'SELECT `a`, `b` + 0e0 AS `b` FROM `shop`.`t` WHERE ((`a` > ?) OR (`a` = ? AND `b` > ?)) ORDER BY `a`, `b` LIMIT 5');
    assert.deepEqual(chunkParameters([1, 2]), [1, 1, 2]);
  });
});

describe('MySQL resync: watermark table config', () => {
  const parse = (extra: object) => mysqlSourceConfig.parse({ name: 'legacy', type: 'mysql', url: 'mysql://cdc@db/', serverId: 7, tables: ['shop.*', 'crm.people'], ...extra });

  it('defaults to tidewater_watermarks in the first captured table\'s database', () => {
    assert.equal(watermarkTableOf(parse({})), 'shop.tidewater_watermarks');
    assert.equal(watermarkTableOf(parse({ watermarkTable: 'ops.marks' })), 'ops.marks');
  });

  it('refuses a malformed name and a watermark table that is also captured', () => {
    assert.throws(() => parse({ watermarkTable: 'marks' }), /DATABASE\.TABLE/);
    assert.throws(() => parse({ watermarkTable: 'crm.people' }), /crm\.people is the resync watermark table \(watermarkTable\): it cannot be captured too/);
  });

  it('reads a watermark only from this source\'s row', () => {
    assert.deepEqual(readWatermark({ source: 'legacy', window_id: 'w1', kind: 'high' }, 'legacy'), { windowId: 'w1', kind: 'high' });
    assert.equal(readWatermark({ source: 'other', window_id: 'w1', kind: 'high' }, 'legacy'), null);
    assert.equal(readWatermark({ source: 'legacy', window_id: 'w1', kind: 'sideways' }, 'legacy'), null);
  });
});

describe('MySQL resync: the assembler and the watermark table', () => {
  const items: TableShape = { schema: 'shop', table: 'items', columns: [{ name: 'id', kind: 'integer' }, { name: 'n', kind: 'integer' }], primaryKey: ['id'] };
  const marks: TableShape = {
    schema: 'shop', table: 'tidewater_watermarks',
    columns: [{ name: 'source', kind: 'text' }, { name: 'window_id', kind: 'text' }, { name: 'kind', kind: 'text' }, { name: 'written_at', kind: 'timestamp' }],
    primaryKey: ['source'],
  };
  const at = (offset: number) => ({ file: 'binlog.000002', offset });
  const mark = (begin: number, kind: string): DecodedEvent[] => [
    { kind: 'begin', position: at(begin), gtid: null, timestampMs: 1000 },
    { kind: 'rows', op: 'update', table: marks, rows: [{ before: { source: 'legacy', window_id: 'w0', kind: 'low', written_at: '2024-01-01 00:00:00' }, after: { source: 'legacy', window_id: 'w1', kind, written_at: '2024-01-01 00:00:01' } }], timestampMs: 1000 },
    { kind: 'commit', end: at(begin + 90), gtid: null, timestampMs: 1000 },
  ];

  it('never emits watermark rows: hands them over with their transaction, and emits what comes back in that transaction', () => {
    const seen: ChangeEvent[] = [];
    const watermarks: Array<[Row, WatermarkTransaction]> = [];
    const chunkRow: ChangeEvent = {
      op: 'r', key: { id: 9 }, before: null, after: { id: 9, n: 1 },
      source: { connector: 'mysql', name: 'legacy', db: 'shop', schema: 'shop', table: 'items', position: '', version: '', snapshot: true, ts_ms: 0 }, ts_ms: 0,
    };
    const assembler = new MysqlTransactionAssembler(
      {
        sourceName: 'legacy', isCaptured: (t) => t.startsWith('shop.'), jsonColumns: () => new Set(), primaryKey: () => undefined, maxBatchEvents: 100,
        watermarkTable: 'shop.tidewater_watermarks',
        onRowEvent: (e) => seen.push(e),
        onWatermark: (row, tx) => {
          watermarks.push([row, tx]);
          return row.kind === 'high' ? [{ ...chunkRow, source: { ...chunkRow.source, version: makeVersion(tx.commitPosition, 0), position: tx.position } }] : undefined;
        },
      },
      parseBinlogPosition('binlog.000002:4'),
    );
    const input: DecodedEvent[] = [
      ...mark(100, 'low'),
      { kind: 'begin', position: at(300), gtid: null, timestampMs: 2000 },
      { kind: 'rows', op: 'insert', table: items, rows: [{ before: null, after: { id: 1, n: 1 } }], timestampMs: 2000 },
      { kind: 'commit', end: at(400), gtid: null, timestampMs: 2000 },
      ...mark(500, 'high'),
    ];
    const batches = input.map((e) => assembler.onEvent(e)).filter((b) => b !== null);
    assert.deepEqual(batches.map((b) => b.events.map((e) => `${e.op} ${e.source.table} ${e.key.id}`)), [[], ['c items 1'], ['r items 9']]);
    assert.deepEqual(seen.map((e) => e.op), ['c'], 'the stream shows the coordinator captured changes only');
    assert.deepEqual(watermarks.map(([row, tx]) => [row.kind, row.window_id, tx.position]), [['low', 'w1', 'binlog.000002:100'], ['high', 'w1', 'binlog.000002:500']]);
    const [chunk] = batches[2].events;
    assert.equal(chunk.source.version, makeVersion(packBinlogPosition(at(500)), 0));
    assert.ok(chunk.source.version > batches[1].events[0].source.version, 'newer than every change before the high watermark');
    assert.equal(chunk.source.ts_ms, 1000, 'takes the commit time of the high watermark transaction');
    assert.equal(batches[2].checkpoint, 'binlog.000002:590');
  });
});
