import { strict as assert } from 'node:assert';
import { BulkAction, bulkBody, bulkRequests, MAX_BULK_DOCUMENT_CHARS } from '../../sinks/elasticsearch/bulk';
import { jsonPieces } from '../../core/log/json-pieces';
import { makeEvent } from '../support/events';

/** _bulk requests are bounded by actions and by document bytes, so a batch of huge documents is not built into one body. */
describe('Elasticsearch _bulk requests (sinks/elasticsearch/bulk.ts)', () => {
  const action = (id: number, chars: number | null): BulkAction => ({
    event: makeEvent({ key: { id } }),
    index: 'items',
    id: String(id),
    version: 1n,
    ...(chars === null ? {} : { document: 'x'.repeat(chars) }),
  });
  const ids = (requests: BulkAction[][]) => requests.map((r) => r.map((a) => Number(a.id)));

  it('splits by count, keeping every action once and in order', () => {
    const actions = Array.from({ length: 2500 }, (_, i) => action(i, 100));
    const requests = bulkRequests(actions, 1000);
    assert.deepEqual(requests.map((r) => r.length), [1000, 1000, 500]);
    assert.deepEqual(ids(requests).flat(), actions.map((a) => Number(a.id)));
  });

  it('sends three 5 MB documents in three requests, small ones and deletes beside them, a lone bigger one alone', () => {
    const big = 5 << 20;
    const actions = [action(1, 100), action(2, big), action(3, null), action(4, big), action(5, big), action(6, 100), action(7, MAX_BULK_DOCUMENT_CHARS + 1)];
    assert.deepEqual(ids(bulkRequests(actions, 1000)), [[1, 2, 3], [4], [5, 6], [7]]);
  });

  it('writes a document in pieces (a large value) into the same body bytes as its whole JSON, beside ordinary ones; sizes it by its pieces', () => {
    const row = { id: 2, note: 'é "quoted"', big: 'v'.repeat(2 << 20), ünï: '✓' };
    const pieces = jsonPieces(row).pieces;
    assert.ok(pieces.length > 1, 'the large value is a piece of its own');
    const whole = [action(1, 10), { ...action(2, null), document: JSON.stringify(row) }, action(3, null)];
    const inPieces = [whole[0], { ...whole[1], document: pieces }, whole[2]];
    const expected = bulkBody(whole);
    assert.equal(typeof expected, 'string');
    const body = bulkBody(inPieces);
    assert.ok(Buffer.isBuffer(body));
    assert.equal(body.toString('utf8'), expected);
    assert.deepEqual(JSON.parse(body.toString('utf8').split('\n')[3]), row);
    // Sized by the characters of its pieces: with 7 MB more it no longer fits beside the first document.
    const bigger = { ...inPieces[1], document: [...pieces, 'x'.repeat(7 << 20)] };
    assert.deepEqual(ids(bulkRequests([inPieces[0], bigger], 1000, 8 << 20)), [[1], [2]]);
    assert.deepEqual(ids(bulkRequests([inPieces[0], inPieces[1]], 1000, 8 << 20)), [[1, 2]]);
  });
});
