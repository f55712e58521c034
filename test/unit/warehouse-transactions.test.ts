import { strict as assert } from 'node:assert';
import { MAX_TRANSACTION_BYTES, MAX_TRANSACTION_RECORDS, transactionLength } from '../../sinks/warehouse/transactions';
import { makeEvent } from '../support/events';
import { asRecords } from '../support/sink-history';

/** The transactions a flush of `records` makes, as their lengths. */
function split(records: ReturnType<typeof asRecords>): number[] {
  const lengths: number[] = [];
  for (let done = 0; done < records.length; done += lengths[lengths.length - 1]) lengths.push(transactionLength(records, done));
  return lengths;
}

describe('warehouse transactions', () => {
  const small = (id: number) => makeEvent({ key: { id }, after: { id, note: `row ${id}` } });
  const big = (id: number, mb: number) => makeEvent({ key: { id }, after: { id, payload: 'x'.repeat(mb << 20) } });

  it('take up to MAX_TRANSACTION_RECORDS small rows each', () => {
    const records = asRecords(Array.from({ length: 2 * MAX_TRANSACTION_RECORDS + 5 }, (_, i) => small(i)));
    assert.deepEqual(split(records), [MAX_TRANSACTION_RECORDS, MAX_TRANSACTION_RECORDS, 5]);
  });

  it('put rows with multi-MB values in transactions of about MAX_TRANSACTION_BYTES, a row too big for one alone', () => {
    assert.equal(MAX_TRANSACTION_BYTES, 8 << 20, 'the sizes below assume 8 MiB');
    // As the fault suite writes them: small rows around three 5 MB values.
    const events = [small(1), small(2), big(3, 5), big(4, 5), small(5), big(6, 5), small(7)];
    assert.deepEqual(split(asRecords(events)), [3, 2, 2]);
    assert.deepEqual(split(asRecords([big(1, 50), big(2, 50), small(3)])), [1, 1, 1]);
    assert.deepEqual(split(asRecords([big(1, 3), big(2, 3), big(3, 3), big(4, 3)])), [2, 2]);
  });
});
