import { strict as assert } from 'node:assert';
import { ChangeEvent } from '../../core/event/change-event';
import { makeVersion } from '../../core/event/version';
import { configSchema } from '../../config/schema';
import { externalVersion } from '../../sinks/elasticsearch/external-version';
import { checkKeyTemplate, renderKey } from '../../sinks/redis/key-template';
import { redisSinkConfig } from '../../sinks/redis/config';
import { newestPerRow } from '../../sinks/shared/collapse';
import { inferColumns, inferType, widen } from '../../sinks/shared/column-types';
import { projectEvent } from '../../sinks/shared/columns';
import { TableFilter, TableOptions } from '../../sinks/shared/table-filter';
import { generationFloor, generationStamp, isNewer, normalizeStamp, stampGeneration } from '../../sinks/shared/version';
import { warehouseSinkConfig } from '../../sinks/warehouse/config';
import { makeEvent } from '../support/events';

describe('sink helpers', () => {
  describe('table routing', () => {
    it('includes by schema.table, schema.* and *, and lets exclusions win', () => {
      const filter = new TableFilter(['public.*', 'sales.orders'], ['public.secrets']);
      assert.deepEqual(
        [['public', 'items'], ['public', 'secrets'], ['sales', 'orders'], ['sales', 'refunds']].map(([s, t]) => filter.includes(s, t)),
        [true, false, true, false],
      );
      assert.equal(new TableFilter(['*'], ['*']).includes('a', 'b'), false);
    });

    it('merges per-table options from the least to the most specific pattern, key by key', () => {
      const options = new TableOptions<{ ttl?: number; template?: string }>({
        'public.orders': { template: 'o:{key}' }, '*': { ttl: 1, template: 'any:{key}' }, 'public.*': { ttl: 2 },
      });
      assert.deepEqual(options.for('public', 'orders'), { ttl: 2, template: 'o:{key}' });
      assert.deepEqual(options.for('public', 'items'), { ttl: 2, template: 'any:{key}' });
      assert.deepEqual(options.for('sales', 'x'), { ttl: 1, template: 'any:{key}' });
    });

    it('projects columns but always keeps key columns, in after, before and unchanged', () => {
      const event: ChangeEvent = { ...makeEvent({ key: { id: 1 }, after: { id: 1, a: 1, b: 2, secret: 's' } }), before: { id: 1, a: 0, secret: 'old' }, unchanged: ['b', 'secret'] };
      assert.deepEqual(projectEvent(event, { excludeColumns: ['secret'] }).after, { id: 1, a: 1, b: 2 });
      const only = projectEvent(event, { columns: ['b'] });
      assert.deepEqual([only.after, only.before, only.unchanged], [{ id: 1, b: 2 }, { id: 1 }, ['b']]);
      assert.equal(projectEvent(event, {}), event, 'no options: the event itself, no copy');
    });
  });

  describe('newest change per row', () => {
    const v = (n: number) => makeVersion(BigInt(n), 1);

    it('keeps the newest version per row whatever the arrival order, and counts duplicates once', () => {
      const events = [
        makeEvent({ key: { id: 1 }, after: { id: 1, s: 'b' }, version: v(2) }),
        makeEvent({ key: { id: 1 }, after: { id: 1, s: 'a' }, version: v(1) }),
        makeEvent({ table: 'other', key: { id: 1 }, after: { id: 1 }, version: v(1) }),
        makeEvent({ key: { id: 2 }, op: 'd', version: v(3) }),
        makeEvent({ key: { id: 2 }, op: 'd', version: v(3) }),
      ];
      const newest = newestPerRow(events);
      assert.deepEqual(newest.map((e) => [e.source.table, e.key.id, e.source.version]), [['items', 1, v(2)], ['other', 1, v(1)], ['items', 2, v(3)]]);
    });

    it('fills unchanged TOAST columns from the row\'s older changes in the batch, leaving only unknown ones', () => {
      const toast = { ...makeEvent({ key: { id: 1 }, op: 'u', after: { id: 1, s: 'new' }, version: v(3) }), unchanged: ['doc', 'other'] };
      const newest = newestPerRow([makeEvent({ key: { id: 1 }, after: { id: 1, s: 'old', doc: 'big text' }, version: v(2) }), toast]);
      assert.deepEqual(newest[0].after, { id: 1, s: 'new', doc: 'big text' });
      assert.deepEqual(newest[0].unchanged, ['other']);
      assert.deepEqual(toast.after, { id: 1, s: 'new' }, 'the batch\'s events are not modified');
      const afterDelete = newestPerRow([makeEvent({ key: { id: 1 }, op: 'd', version: v(2) }), toast]);
      assert.deepEqual(afterDelete[0].unchanged, ['doc', 'other'], 'nothing to take them from after a delete');
    });
  });

  describe('column types', () => {
    it('infers types from values and widens integer → double → text', () => {
      assert.deepEqual([true, 5, 1.5, 'x', 'NaN', { a: 1 }, [1], null].map(inferType), ['boolean', 'integer', 'double', 'text', 'double', 'json', 'json', null]);
      assert.equal(inferType(2 ** 60), 'double', 'an integer beyond 2^53 is not exact as a BIGINT source');
      assert.deepEqual([widen('integer', 'double'), widen('boolean', 'integer'), widen('json', 'text')], ['double', 'text', 'text']);
      assert.deepEqual([...inferColumns([{ a: 1, b: null }, { a: 2.5, c: 'x' }])], [['a', 'double'], ['c', 'text']]);
    });
  });

  describe('versions', () => {
    it('puts the generation before the version, so a newer generation wins even with an older version', () => {
      const old = generationStamp(1, makeVersion(500n, 1));
      const rebuilt = generationStamp(2, makeVersion(10n, 1));
      assert.ok(isNewer(rebuilt, old) && !isNewer(old, rebuilt) && isNewer(old, null));
      assert.equal(stampGeneration(rebuilt), 2);
      assert.ok(generationFloor(2) > old && generationFloor(2) <= rebuilt);
      assert.equal(normalizeStamp(makeVersion(1n, 1)), generationStamp(0, makeVersion(1n, 1)), 'a bare version reads as generation 0');
    });

    it('packs versions into Elasticsearch longs in the same order, and refuses what does not fit', () => {
      const versions = [makeVersion(1n, 0), makeVersion(1n, 1), makeVersion(1n, 0xfffff), makeVersion(2n, 0), makeVersion((1n << 43n) - 1n, 5)];
      const packed = versions.map(externalVersion);
      assert.deepEqual([...packed].sort((a, b) => (a < b ? -1 : 1)), packed);
      assert.ok(packed.at(-1)! < 2n ** 63n);
      assert.throws(() => externalVersion(makeVersion(1n << 43n, 1)), /does not fit Elasticsearch's 63-bit external version/);
      assert.throws(() => externalVersion(makeVersion(1n, 0x100000)), /index below 2\^20/);
    });
  });

  describe('config', () => {
    it('checks Redis key templates', () => {
      assert.equal(checkKeyTemplate('{schema}.{table}:{key}'), null);
      assert.match(checkKeyTemplate('{table}')!, /must contain \{key\}/);
      assert.match(checkKeyTemplate('{key}:{pk}')!, /unknown placeholder \{pk\}/);
      assert.equal(renderKey('c:{table}:{key}', 'public', 'orders', '7:1'), 'c:orders:7:1');
      const result = redisSinkConfig.safeParse({ name: 'c', type: 'redis', url: 'redis://x', tableOptions: { 'public.orders': { keyTemplate: 'o' } } });
      assert.match(result.error!.issues[0].message, /must contain \{key\}/);
      assert.deepEqual(result.error!.issues[0].path, ['tableOptions', 'public.orders', 'keyTemplate']);
    });

    it('requires a URL for a Postgres warehouse and accepts every sink type in the service config', () => {
      const missing = warehouseSinkConfig.safeParse({ name: 'w', type: 'warehouse', engine: 'postgres' });
      assert.deepEqual(missing.error!.issues.map((i) => [i.path.join('.'), i.message]), [['url', 'required when engine is postgres']]);
      const config = configSchema.parse({
        service: { name: 's' },
        sinks: [
          { name: 'cache', type: 'redis', url: 'redis://127.0.0.1:6379', keyPrefix: 'cdc:', ttlSeconds: 60 },
          { name: 'search', type: 'elasticsearch', node: 'http://127.0.0.1:9200', indexPrefix: 'cdc-', tables: ['public.orders'] },
          { name: 'warehouse', type: 'warehouse', engine: 'duckdb', path: './var/warehouse.duckdb' },
        ],
      });
      assert.deepEqual(config.sinks.map((s) => s.type), ['redis', 'elasticsearch', 'warehouse']);
    });
  });
});
