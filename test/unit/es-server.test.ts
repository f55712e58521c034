import { strict as assert } from 'node:assert';
import { EsServer, startEsServer } from '../support/es-server';

// The in-repo Elasticsearch stand-in must behave as ES documents, or the sink
// tests prove nothing: these pin the semantics the sink relies on.
describe('ES semantics server', () => {
  let server: EsServer;
  before(async () => {
    server = await startEsServer({ gcDeletesMs: 200 });
  });
  after(async () => server.stop());

  async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const ndjson = typeof body === 'string';
    const response = await fetch(`${server.url}${path}`, {
      method, body: body === undefined ? undefined : ndjson ? body : JSON.stringify(body),
      headers: { 'content-type': ndjson ? 'application/x-ndjson' : 'application/json' },
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  }
  const bulk = (lines: unknown[]) => call('POST', '/_bulk', lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  const itemOf = (reply: { body: any }, i: number) => Object.values(reply.body.items[i])[0] as any;

  it('rejects external versions at or below the current one with 409, per item, and keeps deletes\' versions until gc_deletes', async () => {
    await call('PUT', '/v1', { mappings: { properties: { n: { type: 'long' } } } });
    const reply = await bulk([
      { index: { _index: 'v1', _id: 'a', version: 5, version_type: 'external' } }, { n: 1 },
      { index: { _index: 'v1', _id: 'a', version: 5, version_type: 'external' } }, { n: 2 },
      { index: { _index: 'v1', _id: 'a', version: 9007199254740993, version_type: 'external' } }, { n: 3 },
      { delete: { _index: 'v1', _id: 'b', version: 7, version_type: 'external' } },
      { index: { _index: 'v1', _id: 'b', version: 6, version_type: 'external' } }, { n: 4 },
    ]);
    assert.equal(reply.body.errors, true);
    assert.deepEqual([0, 1, 2, 3, 4].map((i) => itemOf(reply, i).status), [201, 409, 200, 404, 409]);
    assert.equal(itemOf(reply, 1).error.type, 'version_conflict_engine_exception');
    assert.equal(itemOf(reply, 1).error.reason, '[a]: version conflict, current version [5] is higher or equal to the one provided [5]');
    assert.equal(itemOf(reply, 3).result, 'not_found');
    assert.match(itemOf(reply, 4).error.reason, /current version \[7\]/, 'a delete\'s version is remembered');
    await new Promise((r) => setTimeout(r, 250));
    const later = await bulk([{ index: { _index: 'v1', _id: 'b', version: 6, version_type: 'external' } }, { n: 4 }]);
    assert.equal(itemOf(later, 0).status, 201, 'after index.gc_deletes the tombstone is gone');
  });

  it('refuses a value its mapping cannot parse (400 mapper_parsing_exception) while the other items succeed', async () => {
    await call('PUT', '/m1', { mappings: { properties: { n: { type: 'long' }, o: { type: 'object' } } } });
    const reply = await bulk([
      { index: { _index: 'm1', _id: '1' } }, { n: 'x' },
      { index: { _index: 'm1', _id: '2' } }, { n: '42' },
      { index: { _index: 'm1', _id: '3' } }, { o: 'scalar' },
    ]);
    assert.deepEqual([0, 1, 2].map((i) => itemOf(reply, i).status), [400, 201, 400]);
    assert.equal(itemOf(reply, 0).error.type, 'mapper_parsing_exception');
    assert.match(itemOf(reply, 0).error.reason, /failed to parse field \[n\] of type \[long\] in document with id '1'/);
  });

  it('makes documents searchable only on refresh, while GET is real time', async () => {
    await bulk([{ index: { _index: 'r1', _id: '1' } }, { a: 1 }]);
    assert.equal((await call('POST', '/r1/_count', { query: { match_all: {} } })).body.count, 0);
    assert.equal((await call('GET', '/r1/_doc/1')).body.found, true);
    await call('POST', '/r1/_refresh');
    assert.equal((await call('POST', '/r1/_count', { query: { match_all: {} } })).body.count, 1);
  });

  it('applies _aliases actions all or nothing, and refuses an alias named like an index', async () => {
    await call('PUT', '/x-g1', {});
    await call('PUT', '/x-g2', {});
    await call('POST', '/_aliases', { actions: [{ add: { index: 'x-g1', alias: 'x' } }] });
    const failed = await call('POST', '/_aliases', { actions: [{ remove: { index: 'x-g1', alias: 'x' } }, { add: { index: 'x-g2', alias: 'x' } }, { remove: { index: 'x-g2', alias: 'nope' } }] });
    assert.equal(failed.status, 404);
    assert.equal(failed.body.error.type, 'aliases_not_found_exception');
    assert.deepEqual(Object.keys((await call('GET', '/_alias/x')).body), ['x-g1'], 'nothing changed');
    const swapped = await call('POST', '/_aliases', { actions: [{ remove: { index: 'x-g1', alias: 'x' } }, { add: { index: 'x-g2', alias: 'x' } }, { remove_index: { index: 'x-g1' } }] });
    assert.equal(swapped.status, 200);
    assert.deepEqual(Object.keys((await call('GET', '/_alias/x')).body), ['x-g2']);
    assert.equal((await call('HEAD', '/x-g1')).status, 404);
    assert.equal((await call('POST', '/_aliases', { actions: [{ add: { index: 'x-g2', alias: 'x-g2' } }] })).body.error.type, 'invalid_alias_name_exception');
    assert.equal((await call('PUT', '/x', {})).body.error.type, 'invalid_index_name_exception');
  });

  it('filters a _bulk reply down to filter_path (errors, each item\'s status and error), items still aligned with the actions', async () => {
    const lines = [
      { index: { _index: 'f1', _id: 'a', version: 3, version_type: 'external_gte' } }, { n: 1 },
      { index: { _index: 'f1', _id: 'a', version: 2, version_type: 'external_gte' } }, { n: 2 },
      { delete: { _index: 'f1', _id: 'z', version: 4, version_type: 'external_gte' } },
    ];
    const reply = await call('POST', '/_bulk?filter_path=errors,items.*.status,items.*.error', lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    assert.equal(reply.body.errors, true);
    assert.equal(reply.body.took, undefined, 'fields outside the filter are left out');
    assert.deepEqual(reply.body.items.map((item: object) => Object.keys(item)[0]), ['index', 'index', 'delete']);
    assert.deepEqual(reply.body.items[0], { index: { status: 201 } });
    assert.equal(itemOf(reply, 1).status, 409);
    assert.equal(itemOf(reply, 1).error.type, 'version_conflict_engine_exception');
    assert.deepEqual(reply.body.items[2], { delete: { status: 404 } });
  });

  it('drops the indices of one prefix, aliases with them, and keeps the others', async () => {
    await bulk([{ index: { _index: 'case1-a', _id: '1' } }, { n: 1 }, { index: { _index: 'case2-a', _id: '1' } }, { n: 2 }]);
    await call('POST', '/_aliases', { actions: [{ add: { index: 'case1-a', alias: 'case1-live' } }] });
    assert.equal(server.dropIndices('case1-'), 1);
    assert.equal((await call('GET', '/case1-live/_doc/1')).status, 404);
    assert.equal(server.documents('case2-a').get('1')?.n, 2);
  });

  it('injects 429 rejections: whole bulk requests, then single items', async () => {
    server.rejectBulkRequests(1);
    server.rejectBulkItems(1);
    const rejected = await bulk([{ index: { _index: 'q1', _id: '1' } }, { a: 1 }]);
    assert.equal(rejected.status, 429);
    assert.equal(rejected.body.error.type, 'es_rejected_execution_exception');
    const partial = await bulk([{ index: { _index: 'q1', _id: '1' } }, { a: 1 }, { index: { _index: 'q1', _id: '2' } }, { a: 2 }]);
    assert.deepEqual([itemOf(partial, 0).status, itemOf(partial, 1).status], [429, 201]);
  });
});
