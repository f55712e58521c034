import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DecodedEvent } from '../../connectors/mysql/binlog-decoder';
import { BinlogReader } from '../../connectors/mysql/native-rows/binlog-reader';
import { loadCharsetMap } from '../../connectors/mysql/native-rows/charsets';
import { COMPRESSED_ROWS_EVENT_TYPES, EVENT_HEADER_BYTES, readRowsEvent, ROWS_EVENT_TYPES, rowsEventTableId } from '../../connectors/mysql/native-rows/rows-event';
import { readTableMap, TablePlan } from '../../connectors/mysql/native-rows/table-map';
import { packageRoot } from '../support/kafka';

interface Fixture {
  workload: string[];
  checksumBytes: number;
  events: string[];
  zongji: DecodedEvent[];
}

const fixture: Fixture = JSON.parse(readFileSync(join(packageRoot(), 'test/fixtures/mysql/native-rows-events.json'), 'utf8'));

/** The fixture's JSON form of an event (Buffers as {hex}), so ours compare with what zongji gave. */
const asRecorded = (event: unknown) => JSON.parse(JSON.stringify(event, (_key, value) => (value?.type === 'Buffer' ? { hex: Buffer.from(value.data).toString('hex') } : value)));

describe('MySQL native rows decoder (recorded MariaDB 10.11 events of every column type)', () => {
  it('decodes every rows event as the zongji decoder did, and leaves to zongji exactly the tables and events it cannot read', async () => {
    const charsets = await loadCharsetMap();
    const plans = new Map<number, TablePlan>();
    const declined: string[] = [];
    const ours = new Map<number, unknown>();
    for (const hex of fixture.events) {
      const event = Buffer.from(hex, 'hex');
      const type = event[4];
      const end = event.length - fixture.checksumBytes;
      if (type === 19) {
        const result = readTableMap(new BinlogReader(event, EVENT_HEADER_BYTES), end, () => false, charsets.collationToCharset, charsets.charsetMaxLength);
        plans.delete(result.kind === 'planned' ? result.plan.tableId : result.tableId);
        if (result.kind === 'planned') plans.set(result.plan.tableId, result.plan);
        else if (result.kind === 'fallback') declined.push(`${result.schema}.${result.table}: ${result.reason}`);
      } else if (ROWS_EVENT_TYPES[type] || COMPRESSED_ROWS_EVENT_TYPES.has(type)) {
        const plan = plans.get(rowsEventTableId(event, EVENT_HEADER_BYTES));
        const start = event.readUInt32LE(13) - event.length;
        if (COMPRESSED_ROWS_EVENT_TYPES.has(type)) declined.push(`event at ${start}: compressed`);
        else if (plan) {
          const decoded = readRowsEvent(event, 0, end, plan);
          assert.equal(decoded?.serverId, event.readUInt32LE(5), 'the server id of the event header');
          ours.set(start, asRecorded({ ...decoded, serverId: undefined }));
        }
      }
    }
    assert.deepEqual(declined.sort(), ['types.geo: column type 255', 'types.cyrillic: charset koi8r of column name', `event at ${declinedCompressedAt()}: compressed`].sort());
    const zongjiRows = fixture.zongji.filter((e): e is Extract<DecodedEvent, { kind: 'rows' }> => e.kind === 'rows');
    const expected = zongjiRows.filter((e) => !['geo', 'cyrillic'].includes(e.table.table) && e.eventPosition !== declinedCompressedAt());
    assert.ok(expected.length >= 14, `${expected.length} rows events of natively decoded tables in the fixture`);
    assert.equal(ours.size, expected.length, 'one native rows event per zongji one');
    for (const event of expected) {
      const native = ours.get(event.eventPosition!) as typeof event;
      assert.ok(native, `a native rows event at ${event.eventPosition}`);
      assert.deepStrictEqual(native.table, event.table, `table shape at ${event.eventPosition}`);
      event.rows.forEach((row, i) => {
        for (const image of ['before', 'after'] as const) {
          const theirs = row[image];
          const mine = native.rows[i]?.[image];
          if (theirs === null) assert.equal(mine, null, `${image} image of row ${i} at ${event.eventPosition}`);
          else for (const column of Object.keys(theirs)) assert.deepStrictEqual(mine?.[column], theirs[column], `${event.table.table}.${column} (${image}, row ${i}, event at ${event.eventPosition})`);
        }
      });
      assert.deepStrictEqual(native, event);
    }
  });
});

/** The position of the fixture's one compressed rows event. */
function declinedCompressedAt(): number {
  for (const hex of fixture.events) {
    const event = Buffer.from(hex, 'hex');
    if (COMPRESSED_ROWS_EVENT_TYPES.has(event[4])) return event.readUInt32LE(13) - event.length;
  }
  throw new Error('the fixture has no compressed rows event');
}
