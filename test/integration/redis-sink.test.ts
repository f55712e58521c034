import { strict as assert } from 'node:assert';
import Redis from 'ioredis';
import { ChangeEvent, keyString } from '../../core/event/change-event';
import { makeVersion } from '../../core/event/version';
import { LogRecord } from '../../core/log/change-log';
import { createLogger } from '../../core/runtime/logger';
import { redisSinkConfig } from '../../sinks/redis/config';
import { RedisSink } from '../../sinks/redis/redis-sink';
import { makeEvent } from '../support/events';
import { RedisServer, startRedis, stopAll } from '../support/servers';

const quietLogger = createLogger('test', () => undefined);

/** A made-up change history: 40 rows, 600 changes in commit order, some deletes and re-inserts. */
function history(): ChangeEvent[] {
  const events: ChangeEvent[] = [];
  const alive = new Set<number>();
  let random = 42;
  const next = () => (random = (random * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < 600; i++) {
    const id = Math.floor(next() * 40);
    const version = makeVersion(BigInt(1000 + i), 1);
    if (alive.has(id) && next() < 0.2) {
      events.push(makeEvent({ table: 'items', key: { id }, op: 'd', version }));
      alive.delete(id);
    } else {
      events.push(makeEvent({ table: 'items', key: { id }, op: alive.has(id) ? 'u' : 'c', after: { id, step: i, note: `row ${id} at ${i}` }, version }));
      alive.add(id);
    }
  }
  return events;
}

/** The rows a reader should see after `events`: the last image of each live row. */
function finalRows(events: ChangeEvent[]): Map<string, unknown> {
  const rows = new Map<string, unknown>();
  for (const e of events) {
    const key = `public.${e.source.table}:${keyString(e.key)}`;
    if (e.op === 'd') rows.delete(key);
    else rows.set(key, e.after);
  }
  return rows;
}

const asRecords = (events: ChangeEvent[]): LogRecord[] => events.map((event, offset) => ({ partition: 0, offset, event }));

describe('Redis sink', function () {
  this.timeout(60_000);
  let server: RedisServer;
  let redis: Redis;
  let sink: RedisSink;
  let prefix = '';
  let n = 0;

  before(async () => {
    server = await startRedis();
    redis = new Redis(server.url);
  });
  after(async () => {
    redis.disconnect();
    await stopAll();
  });
  beforeEach(async () => {
    prefix = `t${++n}:`;
    sink = new RedisSink(redisSinkConfig.parse({ name: 'cache', type: 'redis', url: server.url, keyPrefix: prefix }), quietLogger);
    await sink.open();
  });
  afterEach(async () => sink.close());

  async function rows(): Promise<Map<string, unknown>> {
    const keys = (await redis.keys(`${prefix}public.*`)).sort();
    const values = keys.length ? await redis.mget(keys) : [];
    return new Map(keys.map((k, i) => [k.slice(prefix.length), JSON.parse(values[i]!)]));
  }

  it('ends equal to the source after the log is replayed once, twice, and in shuffled batches of other rows', async () => {
    const events = history();
    await sink.write(asRecords(events));
    const once = await rows();
    assert.deepEqual(once, finalRows(events));

    await sink.write(asRecords(events));
    assert.deepEqual(await rows(), once, 'a second replay of the same log changes nothing');

    // Reorder across rows (per-row order is what the log guarantees, nothing more).
    const byRow = new Map<string, ChangeEvent[]>();
    for (const e of events) byRow.set(keyString(e.key), [...(byRow.get(keyString(e.key)) ?? []), e]);
    const interleaved = [...byRow.values()].reverse().flat();
    await sink.write(asRecords(interleaved));
    assert.deepEqual(await rows(), once);
  });

  it('ignores an event whose version is not newer than the one applied', async () => {
    const newer = makeEvent({ key: { id: 7 }, op: 'u', after: { id: 7, name: 'newer' }, version: makeVersion(200n, 1) });
    const older = makeEvent({ key: { id: 7 }, op: 'u', after: { id: 7, name: 'older' }, version: makeVersion(100n, 5) });
    const staleDelete = makeEvent({ key: { id: 7 }, op: 'd', version: makeVersion(199n, 1) });
    await sink.write(asRecords([newer, older, staleDelete]));
    assert.deepEqual(await rows(), new Map([['public.items:7', { id: 7, name: 'newer' }]]));

    // Same commit, later index within the transaction: newer.
    await sink.write(asRecords([makeEvent({ key: { id: 7 }, op: 'u', after: { id: 7, name: 'same tx, later' }, version: makeVersion(200n, 2) })]));
    assert.deepEqual(await rows(), new Map([['public.items:7', { id: 7, name: 'same tx, later' }]]));
  });

  it('keeps a deleted row deleted when an older insert of it is replayed', async () => {
    const insert = makeEvent({ key: { id: 1 }, op: 'c', after: { id: 1 }, version: makeVersion(10n, 1) });
    const remove = makeEvent({ key: { id: 1 }, op: 'd', version: makeVersion(11n, 1) });
    await sink.write(asRecords([insert, remove, insert]));
    assert.equal(await redis.exists(`${prefix}public.items:1`), 0);
  });

  it('honours a truncate: older rows go, older events stay out, newer rows come back', async () => {
    const before = [1, 2, 3].map((id) => makeEvent({ key: { id }, after: { id }, version: makeVersion(10n, id) }));
    await sink.write(asRecords(before));
    await sink.write(asRecords([makeEvent({ op: 't', version: makeVersion(20n, 1) })]));
    assert.equal((await rows()).size, 0);
    await sink.write(asRecords([...before, makeEvent({ key: { id: 4 }, after: { id: 4 }, version: makeVersion(21n, 1) })]));
    assert.deepEqual(await rows(), new Map([['public.items:4', { id: 4 }]]));
  });
});
