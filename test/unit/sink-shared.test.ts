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
import { isNewer, normalizeStamp, rowStamp, stampGeneration, stampVersion } from '../../sinks/shared/version';
import { decodeKey, keyString } from '../../core/event/change-event';
import { unfillableUnchanged } from '../../sinks/shared/unchanged-columns';
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

    it('keeps a row that began in the batch without its TOAST value (primary-key change) unwritable after later updates', () => {
      const moved = { ...makeEvent({ key: { id: 2 }, op: 'c', after: { id: 2, s: 'moved' }, version: v(2) }), unchanged: ['doc'] };
      const updated = { ...makeEvent({ key: { id: 2 }, op: 'u', after: { id: 2, s: 'then updated' }, version: v(3) }), unchanged: ['doc'] };
      const [newest] = newestPerRow([moved, updated]);
      assert.deepEqual([newest.after, newest.unchanged], [{ id: 2, s: 'then updated' }, ['doc']]);
      assert.match(unfillableUnchanged(newest) ?? '', /REPLICA IDENTITY FULL/, 'dead-lettered, not written without doc');
      const stored = newestPerRow([{ ...updated, source: { ...updated.source, version: v(2) } }, updated])[0];
      assert.equal(unfillableUnchanged(stored), null, 'updates of a stored row keep its value as before');
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
    it('puts the source version before the generation: an older record never wins, an equal one from a newer generation does', () => {
      const live = rowStamp(makeVersion(500n, 1), 1);
      const replayedOlder = rowStamp(makeVersion(10n, 1), 2);
      const replayedSame = rowStamp(makeVersion(500n, 1), 2);
      const liveNewer = rowStamp(makeVersion(600n, 1), 1);
      assert.ok(!isNewer(replayedOlder, live), 'a replayed older record loses to the live row');
      assert.ok(isNewer(replayedSame, live), 'the same change from the new generation wins');
      assert.ok(isNewer(liveNewer, replayedSame), 'a live update beats what the rebuild wrote before');
      assert.ok(isNewer(live, null));
      assert.equal(stampGeneration(replayedSame), 2);
      assert.equal(stampVersion(replayedSame), makeVersion(500n, 1));
    });

    it('reads stamps of the older layouts', () => {
      const version = makeVersion(1n, 1);
      assert.equal(normalizeStamp(version), rowStamp(version, 0), 'a bare version reads as generation 0');
      assert.equal(normalizeStamp('00000003' + version), rowStamp(version, 3), 'generation-first stamps are turned around');
    });

    it('gives Elasticsearch the commit position alone, for every real position and any transaction size', () => {
      const mariadbFile5000 = (5000n << 40n) | 123456n;
      const versions = [makeVersion(1n, 0), makeVersion(1n, 0xffffffff), makeVersion(2n, 0), makeVersion(1n << 43n, 2_000_000), makeVersion(mariadbFile5000, 1), makeVersion((1n << 63n) - 1n, 5)];
      const packed = versions.map(externalVersion);
      assert.deepEqual(packed, [1n, 1n, 2n, 1n << 43n, mariadbFile5000, (1n << 63n) - 1n]);
      assert.throws(() => externalVersion(makeVersion(1n << 63n, 1)), /above 2\^63 - 1, the largest Elasticsearch external version/);
    });
  });

  describe('keys', () => {
    it('keeps single-column keys as they are and encodes composite keys reversibly', () => {
      assert.equal(keyString({ id: 42 }), '42');
      assert.equal(keyString({ id: 'a:b\\c' }), 'a:b\\c');
      assert.equal(keyString({ a: 1, b: 'x' }), '1:x');
      const one = keyString({ a: 'a:b', b: 'c' });
      const two = keyString({ a: 'a', b: 'b:c' });
      assert.notEqual(one, two);
      for (const parts of [['a:b', 'c'], ['a', 'b:c'], ['a\\', ':'], ['', ''], ['\\:', 'x\\'], ['1', '2', '3:4']]) {
        const key = Object.fromEntries(parts.map((p, i) => [`k${i}`, p]));
        assert.deepEqual(decodeKey(keyString(key), parts.length), parts, JSON.stringify(parts));
      }
      assert.deepEqual(decodeKey('a:b', 1), ['a:b']);
      assert.throws(() => decodeKey('a:b:c', 2), /3 parts, its table's primary key has 2 columns/);
    });
  });

  describe('unchanged TOAST columns', () => {
    it('names the fix for a new row whose TOAST column the source did not send', () => {
      const event = makeEvent({ op: 'c', key: { id: 2 }, after: { id: 2 } });
      assert.equal(unfillableUnchanged(event), null);
      const reason = unfillableUnchanged({ ...event, unchanged: ['body'] });
      assert.match(reason ?? '', /key 2.*TOAST column\(s\) body.*ALTER TABLE public\.\w+ REPLICA IDENTITY FULL/);
      assert.equal(unfillableUnchanged({ ...event, op: 'u', unchanged: ['body'] }), null, 'an update keeps the stored value');
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
