// The version rule of `cdc verify --repair`'s deletes (SinkReader.deleteKeys), on
// each sink as the sink itself writes it: a row deleted as an extra is deleted only
// while the sink still holds it at the stamp read before the source was checked,
// so a newer change applied first survives, and a newer change applied after the
// delete is written over it.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sink } from '../../core/contracts/sink';
import { makeVersion } from '../../core/event/version';
import { createLogger } from '../../core/runtime/logger';
import { SinkReader } from '../../core/verify/sink-reader';
import { elasticsearchSinkConfig } from '../../sinks/elasticsearch/config';
import { ElasticsearchSink } from '../../sinks/elasticsearch/es-sink';
import { EsSinkReader } from '../../sinks/elasticsearch/reader';
import { redisSinkConfig } from '../../sinks/redis/config';
import { RedisSinkReader } from '../../sinks/redis/reader';
import { RedisSink } from '../../sinks/redis/redis-sink';
import { DeadLetterStore } from '../../sinks/shared/dead-letters';
import { warehouseSinkConfig } from '../../sinks/warehouse/config';
import { WarehouseSinkReader } from '../../sinks/warehouse/reader';
import { WarehouseSink } from '../../sinks/warehouse/warehouse-sink';
import { EsServer, startEsServer } from '../support/es-server';
import { makeEvent } from '../support/events';
import { PgServer, RedisServer, startPostgres, startRedis, stopAll } from '../support/servers';
import { asRecords } from '../support/sink-history';

const quiet = createLogger('test', () => undefined);
const OLD = makeVersion(100n, 0);
const NEWER = makeVersion(200n, 0);
const KEY = ['id'];

describe('verify --repair deletes under the version rules (every sink)', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let pg: PgServer;
  let es: EsServer;
  const dir = mkdtempSync(join(tmpdir(), 'cdc-repair-guard-'));

  before(async () => {
    [redis, pg, es] = await Promise.all([startRedis(), startPostgres(), startEsServer()]);
  });
  after(async () => {
    await es?.stop();
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  const kinds: Record<string, () => { sink: Sink; reader: SinkReader }> = {
    redis: () => {
      const config = redisSinkConfig.parse({ name: 'cache', type: 'redis', url: redis.url, keyPrefix: 'guard:' });
      return { sink: new RedisSink(config, quiet), reader: new RedisSinkReader(config) };
    },
    elasticsearch: () => {
      const config = elasticsearchSinkConfig.parse({ name: 'search', type: 'elasticsearch', node: es.url, indexPrefix: 'guard-' });
      return { sink: new ElasticsearchSink(config, quiet, new DeadLetterStore(dir, 'search')), reader: new EsSinkReader(config, quiet) };
    },
    'duckdb warehouse': () => {
      const config = warehouseSinkConfig.parse({ name: 'duck', type: 'warehouse', engine: 'duckdb', path: join(dir, 'guard.duckdb') });
      return { sink: new WarehouseSink(config, { logger: quiet, dataDir: dir }, new DeadLetterStore(dir, 'duck')), reader: new WarehouseSinkReader(config, { dataDir: dir }) };
    },
    'postgres warehouse': () => {
      const config = warehouseSinkConfig.parse({ name: 'pgwh', type: 'warehouse', engine: 'postgres', url: pg.url, schema: 'guard' });
      return { sink: new WarehouseSink(config, { logger: quiet, dataDir: dir }, new DeadLetterStore(dir, 'pgwh')), reader: new WarehouseSinkReader(config, { dataDir: dir }) };
    },
  };

  for (const [kind, make] of Object.entries(kinds)) {
    it(`${kind}: a newer change applied before the delete survives it; one applied after is written over it`, async () => {
      const { sink, reader } = make();
      let offset = 0;
      const write = async (id: number, name: string, version: string) => {
        await sink.write(asRecords([makeEvent({ key: { id }, after: { id, name }, version })], 0, offset++));
        await sink.flush();
      };
      await sink.open();
      try {
        await write(1, 'extra one', OLD);
        await write(2, 'extra two', OLD);
        const stamps = await reader.versions('public', 'items', KEY, ['1', '2', '3']);
        assert.ok(stamps[0] !== null && stamps[1] !== null, `the sink holds both rows: ${JSON.stringify(stamps)}`);
        assert.equal(stamps[2], null, 'no stamp for a row the sink does not hold');

        // Row 1: the pipeline applies a newer change between the stamp and the delete.
        await write(1, 'newer before the delete', NEWER);
        assert.equal(await reader.deleteKeys('public', 'items', KEY, [{ key: '1', version: stamps[0]! }]), 0, 'the delete is refused');
        assert.deepEqual(await reader.rows('public', 'items', KEY, ['1']), [{ id: 1, name: 'newer before the delete' }]);

        // Row 2: deleted under its stamp; a newer change after that wins over the delete.
        assert.equal(await reader.deleteKeys('public', 'items', KEY, [{ key: '2', version: stamps[1]! }]), 1);
        assert.deepEqual(await reader.rows('public', 'items', KEY, ['2']), [null], 'the extra is gone');
        const seen: string[] = [];
        await reader.scanKeys('public', 'items', KEY, async (keys) => void seen.push(...keys));
        assert.deepEqual(seen, ['1'], 'a scan no longer finds the deleted row');
        await write(2, 'newer after the delete', NEWER);
        assert.deepEqual(await reader.rows('public', 'items', KEY, ['2']), [{ id: 2, name: 'newer after the delete' }]);
      } finally {
        await reader.close();
        await sink.close();
      }
    });
  }
});
