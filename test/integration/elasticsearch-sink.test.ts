import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@elastic/elasticsearch';
import { makeVersion } from '../../core/event/version';
import { Metrics } from '../../core/http/metrics';
import { createLogger } from '../../core/runtime/logger';
import { elasticsearchSinkConfig } from '../../sinks/elasticsearch/config';
import { ElasticsearchSink } from '../../sinks/elasticsearch/es-sink';
import { DeadLetterStore } from '../../sinks/shared/dead-letters';
import { EsServer, startEsServer } from '../support/es-server';
import { makeEvent } from '../support/events';
import { asRecords, changeHistory, finalRows, randomBatches, seeded, shuffleWithinKeyOrder } from '../support/sink-history';

const quietLogger = createLogger('test', () => undefined);

// Against a real Elasticsearch when ES_URL is set, else the in-repo server with ES's semantics.
describe(`Elasticsearch sink (${process.env.ES_URL ? `real Elasticsearch at ${process.env.ES_URL}` : 'in-repo ES semantics server'})`, function () {
  this.timeout(60_000);
  let server: EsServer | null = null;
  let url: string;
  let client: Client;
  let dataDir: string;
  let prefix = '';
  let n = 0;
  const sinks: ElasticsearchSink[] = [];

  before(async () => {
    if (process.env.ES_URL) url = process.env.ES_URL;
    else {
      server = await startEsServer();
      url = server.url;
    }
    client = new Client({ node: url });
    dataDir = mkdtempSync(join(tmpdir(), 'tidewater-es-sink-'));
  });
  after(async () => {
    await client.close();
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  beforeEach(() => {
    prefix = `tidewater-test-${process.pid}-${++n}-`;
  });
  afterEach(async () => {
    for (const sink of sinks.splice(0)) await sink.close();
    // Real clusters keep indices: remove this test's.
    const indices = Object.keys(await client.indices.getAlias({ index: '*' }).catch(() => ({}))).filter((i) => i.startsWith(prefix));
    for (const index of indices) await client.indices.delete({ index }).catch(() => undefined);
  });

  async function openSink(extra: Record<string, unknown> = {}, metrics?: Metrics, generation?: number): Promise<ElasticsearchSink> {
    const config = elasticsearchSinkConfig.parse({ name: 'search', type: 'elasticsearch', node: url, indexPrefix: prefix, ...extra });
    const sink = new ElasticsearchSink(config, quietLogger, new DeadLetterStore(dataDir, `search-${n}`, metrics));
    if (generation) sink.useGeneration(generation);
    await sink.open();
    sinks.push(sink);
    return sink;
  }

  /** What readers see through the aliases: `table:id` → _source. */
  async function documents(tables = ['items', 'order_lines']): Promise<Map<string, unknown>> {
    const out = new Map<string, unknown>();
    for (const table of tables) {
      const alias = `${prefix}public.${table}`;
      if (!(await client.indices.exists({ index: alias }))) continue;
      await client.indices.refresh({ index: alias });
      const result = await client.search({ index: alias, size: 10_000, query: { match_all: {} } });
      for (const hit of result.hits.hits) out.set(`${table}:${hit._id}`, hit._source);
    }
    return new Map([...out].sort(([a], [b]) => (a < b ? -1 : 1)));
  }
  const sorted = (rows: Map<string, unknown>) => new Map([...rows].sort(([a], [b]) => (a < b ? -1 : 1)));

  it('converges to the source through truncates and unchanged TOAST columns: replayed once, twice, and shuffled in random batches', async () => {
    const sink = await openSink();
    const events = changeHistory({ changes: 600, truncateAt: 0.5 });
    const expected = sorted(finalRows(events));
    await sink.write(asRecords(events));
    assert.deepEqual(await documents(), expected);
    await sink.write(asRecords(events));
    assert.deepEqual(await documents(), expected, 'a second replay changes nothing');
    const random = seeded(9);
    for (const batch of randomBatches(asRecords(shuffleWithinKeyOrder(events, random)), 80, random)) await sink.write(batch);
    assert.deepEqual(await documents(), expected, 'a reordering the log allows, in random batches, changes nothing');
    assert.ok(sink.stats.stale > 0, 'Elasticsearch itself refused the replayed events (409 version conflicts)');
  });

  it('lands rows under the alias <prefix><schema>.<table> with _id = key joined by ":" and _source = the row', async () => {
    const sink = await openSink();
    const row = { order_id: '9000000000000000001', line: 2, amount: '12345678901234567890.12', ratio: 0.30000000000000004, doc: { a: [1, { b: null }] } };
    await sink.write(asRecords([makeEvent({ table: 'order_lines', key: { order_id: row.order_id, line: 2 }, after: row, version: makeVersion(5n, 1) })]));
    const doc = await client.get({ index: `${prefix}public.order_lines`, id: '9000000000000000001:2' });
    assert.deepEqual(doc._source, row);
    assert.equal(doc._index, `${prefix}public.order_lines-g1`);
    assert.equal(doc._version, 5, 'the external version is the commit position (version_type external_gte)');
  });

  it('lets Elasticsearch refuse stale events: an older update, a stale delete, an older insert after a delete', async () => {
    const sink = await openSink();
    await sink.write(asRecords([
      makeEvent({ key: { id: 1 }, after: { id: 1, name: 'newer' }, version: makeVersion(200n, 1) }),
      makeEvent({ key: { id: 2 }, after: { id: 2 }, version: makeVersion(100n, 1) }),
    ]));
    await sink.write(asRecords([makeEvent({ key: { id: 1 }, op: 'u', after: { id: 1, name: 'older' }, version: makeVersion(150n, 1) })]));
    await sink.write(asRecords([makeEvent({ key: { id: 1 }, op: 'd', version: makeVersion(199n, 9) })]));
    await sink.write(asRecords([makeEvent({ key: { id: 2 }, op: 'd', version: makeVersion(101n, 1) })]));
    await sink.write(asRecords([makeEvent({ key: { id: 2 }, op: 'c', after: { id: 2, back: true }, version: makeVersion(100n, 1) })]));
    assert.deepEqual(await documents(['items']), new Map([['items:1', { id: 1, name: 'newer' }]]));
    assert.equal(sink.stats.stale, 3);
  });

  it('retries a burst of 429s, whole requests and single items, with no loss', async function () {
    if (!server) {
      console.log('      (skipped against real Elasticsearch: 429 bursts can only be injected by the in-repo server)');
      this.skip();
    }
    const sink = await openSink({ bulkActions: 50, retryBaseMs: 20 });
    const events = changeHistory({ changes: 400, seed: 21 });
    server.rejectBulkRequests(3);
    server.rejectBulkItems(120);
    await sink.write(asRecords(events));
    assert.equal(server.stats.rejectedRequests, 3);
    assert.equal(server.stats.rejectedItems, 120);
    assert.deepEqual(await documents(), sorted(finalRows(events)));
  });

  it('sends a document ES refuses for its mapping to the dead-letter file, counts it, and applies the rest', async () => {
    const metrics = new Metrics();
    const sink = await openSink({ tableOptions: { 'public.items': { mappings: { qty: { type: 'long' } } } } }, metrics);
    const good = [1, 2, 3].map((id) => makeEvent({ key: { id }, after: { id, qty: id * 10 }, version: makeVersion(10n, id) }));
    const bad = makeEvent({ key: { id: 4 }, after: { id: 4, qty: 'lots' }, version: makeVersion(10n, 4) });
    await sink.write(asRecords([good[0], bad, good[1], good[2]]));
    assert.deepEqual(await documents(['items']), new Map(good.map((e) => [`items:${e.key.id}`, e.after])));
    const letters = await new DeadLetterStore(dataDir, `search-${n}`).read();
    assert.equal(letters.length, 1);
    assert.equal(letters[0].table, 'public.items');
    assert.equal(letters[0].key, '4');
    assert.deepEqual(letters[0].event.after, { id: 4, qty: 'lots' });
    assert.match(letters[0].reason, /Elasticsearch refused the document \(400\) \w*(mapper_parsing|document_parsing)_exception: .*failed to parse field \[qty\] of type \[long\]/);
    assert.match(await metrics.registry.metrics(), /cdc_sink_dead_letters_total\{sink="search-\d+",table="public.items"\} 1/);
  });

  it('builds a new generation beside the live one and switches the alias atomically, dropping the old index', async () => {
    const live = await openSink();
    const events = changeHistory({ changes: 300, seed: 5 });
    await live.write(asRecords(events));
    await live.write(asRecords([makeEvent({ table: 'ghosts', key: { id: 1 }, after: { id: 1 }, version: makeVersion(9000n, 1) })]));
    const before = await documents();

    const rebuild = await openSink({}, undefined, 2);
    assert.equal(await rebuild.liveGeneration(), 1);
    await rebuild.write(asRecords(events.slice(0, 100)));
    assert.deepEqual(await documents(), before, 'readers keep the live generation while the new one builds');
    await rebuild.write(asRecords(events.slice(100)));
    await rebuild.promote();

    assert.equal(await live.liveGeneration(), 2);
    assert.deepEqual(await documents(), sorted(finalRows(events)));
    const aliases = await client.indices.getAlias({ index: `${prefix}*` });
    assert.deepEqual(Object.keys(aliases).sort(), [`${prefix}public.ghosts-g2`, `${prefix}public.items-g2`, `${prefix}public.order_lines-g2`]);
    assert.equal((await client.count({ index: `${prefix}public.ghosts` })).count, 0, 'a table the new generation never saw reads as empty');
  });
});
