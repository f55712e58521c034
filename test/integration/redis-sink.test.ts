import { strict as assert } from 'node:assert';
import Redis from 'ioredis';
import { ChangeEvent, keyString } from '../../core/event/change-event';
import { makeVersion } from '../../core/event/version';
import { createLogger } from '../../core/runtime/logger';
import { redisSinkConfig } from '../../sinks/redis/config';
import { RedisSink } from '../../sinks/redis/redis-sink';
import { makeEvent } from '../support/events';
import { asRecords, changeHistory, finalRows as expectedRows, randomBatches, seeded, shuffleWithinKeyOrder } from '../support/sink-history';
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

  /** Row documents by `table:key`, read with SCAN (bookkeeping keys left out). */
  async function tableRows(): Promise<Map<string, unknown>> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}public.*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
    keys.sort();
    const values = keys.length ? await redis.mget(keys) : [];
    return new Map(keys.map((k, i) => [k.slice(prefix.length + 'public.'.length), JSON.parse(values[i]!)]));
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

  it('writes a batch holding 5 MB values among small rows whole (sent as several pipelines, in order)', async () => {
    const events = history();
    const big = (id: number) => makeEvent({ table: 'items', key: { id }, op: 'u', after: { id, note: String(id).repeat(5 << 20) } });
    // Versions in list order (the big rows' keys change again later in the history, so both must land in order).
    // A value of non-ASCII text too: it is written as UTF-8 bytes, piece by piece (jsonBytes()).
    const unicode = makeEvent({ table: 'items', key: { id: 6 }, op: 'u', after: { id: 6, note: 'é✓'.repeat(1 << 19), quoted: 'é "q"'.repeat(1 << 18), tail: 'ü' } });
    const mixed = [...events.slice(0, 300), big(1), big(2), ...events.slice(300, 310), big(3), ...events.slice(310), big(5), unicode]
      .map((e, i) => ({ ...e, source: { ...e.source, version: makeVersion(BigInt(1000 + i), 1) } }));
    await sink.write(asRecords(mixed));
    const expected = finalRows(mixed);
    assert.equal((expected.get('public.items:5') as { note: string }).note.length, 5 << 20);
    assert.equal((expected.get('public.items:6') as { note: string }).note.length, 1 << 20);
    assert.deepEqual(await rows(), expected);
  });

  it('reads version stamps written in the older layouts (bare version; generation first)', async () => {
    const versions = `${prefix}__cdc_versions:public.items`;
    await redis.set(`${prefix}public.items:1`, JSON.stringify({ id: 1, name: 'bare' }));
    await redis.set(`${prefix}public.items:2`, JSON.stringify({ id: 2, name: 'generation first' }));
    await redis.hset(versions, '1', makeVersion(500n, 1), '2', '00000001' + makeVersion(500n, 1));
    const at = (id: number, version: bigint, name: string) => makeEvent({ key: { id }, op: 'u', after: { id, name }, version: makeVersion(version, 1) });
    await sink.write(asRecords([at(1, 400n, 'older'), at(2, 400n, 'older')]));
    assert.deepEqual(await rows(), new Map([['public.items:1', { id: 1, name: 'bare' }], ['public.items:2', { id: 2, name: 'generation first' }]]));
    await sink.write(asRecords([at(1, 600n, 'newer'), at(2, 600n, 'newer')]));
    assert.deepEqual(await rows(), new Map([['public.items:1', { id: 1, name: 'newer' }], ['public.items:2', { id: 2, name: 'newer' }]]));
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

  it('converges to the source through truncates and unchanged TOAST columns: replayed once, twice, and shuffled in random batches', async () => {
    const events = changeHistory({ changes: 800, truncateAt: 0.5 });
    const expected = expectedRows(events);
    await sink.write(asRecords(events));
    assert.deepEqual(await tableRows(), expected);
    await sink.write(asRecords(events));
    assert.deepEqual(await tableRows(), expected, 'a second replay changes nothing');
    const random = seeded(7);
    for (const batch of randomBatches(asRecords(shuffleWithinKeyOrder(events, random)), 60, random)) await sink.write(batch);
    assert.deepEqual(await tableRows(), expected, 'a reordering the log allows, in random batches, changes nothing');
  });

  it('keeps unchanged TOAST columns byte for byte, without rounding numbers', async () => {
    const stored = '{"id":1,"note":"v1","amount":"12345678901234567890.123456789","ratio":0.30000000000000004,"doc":{"n":1.0000000000000002,"s":"a \\"q\\" }]{","l":[1,{"x":[]}]}}';
    await sink.write(asRecords([makeEvent({ key: { id: 1 }, after: JSON.parse(stored), version: makeVersion(10n, 1) })]));
    assert.equal(await redis.get(`${prefix}public.items:1`), stored, 'stored exactly as JSON.stringify wrote it');
    const update = makeEvent({ key: { id: 1 }, op: 'u', after: { id: 1, note: 'v2' }, version: makeVersion(11n, 1) });
    update.unchanged = ['amount', 'ratio', 'doc'];
    await sink.write(asRecords([update]));
    const text = (await redis.get(`${prefix}public.items:1`))!;
    assert.equal(text, '{"id":1,"note":"v2","amount":"12345678901234567890.123456789","ratio":0.30000000000000004,"doc":{"n":1.0000000000000002,"s":"a \\"q\\" }]{","l":[1,{"x":[]}]}}');
    assert.equal(sink.stats.unchangedLost, 0);

    // The row was never written (e.g. its primary-key change was dead-lettered): refused and dead-lettered, not written without them.
    const orphan = makeEvent({ key: { id: 2 }, op: 'u', after: { id: 2, note: 'only this' }, version: makeVersion(12n, 1) });
    orphan.unchanged = ['doc'];
    await sink.write(asRecords([orphan]));
    assert.equal(await redis.get(`${prefix}public.items:2`), null);
    assert.equal(sink.stats.deadLetters, 1);
    // The stored row expired (its stamp is still there): written without those columns, and counted.
    await sink.write(asRecords([makeEvent({ key: { id: 3 }, after: { id: 3, note: 'v1', doc: 'big' }, version: makeVersion(12n, 2) })]));
    await redis.del(`${prefix}public.items:3`);
    const expired = makeEvent({ key: { id: 3 }, op: 'u', after: { id: 3, note: 'v2' }, version: makeVersion(13n, 1) });
    expired.unchanged = ['doc'];
    await sink.write(asRecords([expired]));
    assert.equal(await redis.get(`${prefix}public.items:3`), '{"id":3,"note":"v2"}');
    assert.equal(sink.stats.unchangedLost, 1);
  });

  it('uses key templates and TTLs per table, and honours column and table lists', async () => {
    await sink.close();
    sink = new RedisSink(redisSinkConfig.parse({
      name: 'cache', type: 'redis', url: server.url, keyPrefix: prefix,
      keyTemplate: 'row:{table}:{key}', ttlSeconds: 3600,
      exclude: ['public.secrets'],
      tableOptions: {
        'public.*': { excludeColumns: ['password'] },
        'public.order_lines': { keyTemplate: 'order:{key}', ttlSeconds: 60, columns: ['qty'] },
      },
    }), quietLogger);
    await sink.open();
    await sink.write(asRecords([
      makeEvent({ table: 'items', key: { id: 1 }, after: { id: 1, name: 'a', password: 'x' }, version: makeVersion(1n, 1) }),
      makeEvent({ table: 'order_lines', key: { order_id: 7, line: 2 }, after: { order_id: 7, line: 2, qty: 3, price: '1.5' }, version: makeVersion(1n, 2) }),
      makeEvent({ table: 'secrets', key: { id: 1 }, after: { id: 1, s: 'no' }, version: makeVersion(1n, 3) }),
    ]));
    assert.deepEqual(JSON.parse((await redis.get(`${prefix}row:items:1`))!), { id: 1, name: 'a' });
    assert.deepEqual(JSON.parse((await redis.get(`${prefix}order:7:2`))!), { order_id: 7, line: 2, qty: 3 });
    const [itemTtl, lineTtl] = [await redis.pttl(`${prefix}row:items:1`), await redis.pttl(`${prefix}order:7:2`)];
    assert.ok(itemTtl > 3_590_000 && itemTtl <= 3_600_000, `items TTL ${itemTtl} ms`);
    assert.ok(lineTtl > 50_000 && lineTtl <= 60_000, `order_lines TTL ${lineTtl} ms`);
    assert.equal((await redis.keys(`${prefix}*secrets*`)).length, 0);

    // A truncate finds rows through the template too.
    await sink.write(asRecords([makeEvent({ table: 'order_lines', op: 't', version: makeVersion(2n, 1) })]));
    assert.equal(await redis.exists(`${prefix}order:7:2`), 0);
  });

  it('rebuilds into a new generation over the live keys, then sweeps what the new generation did not write', async () => {
    const events = changeHistory({ changes: 400, seed: 3 });
    await sink.write(asRecords(events));
    // Rows the source lost while the old generation ran (e.g. deletes compacted out of the log).
    const stale = [1, 2].map((id) => makeEvent({ table: 'ghosts', key: { id }, after: { id }, version: makeVersion(5000n, id) }));
    await sink.write(asRecords(stale));

    const rebuild = new RedisSink(redisSinkConfig.parse({ name: 'cache', type: 'redis', url: server.url, keyPrefix: prefix }), quietLogger);
    assert.equal(await rebuild.liveGeneration(), 1);
    rebuild.useGeneration(2);
    await rebuild.open();
    try {
      const half = Math.floor(events.length / 2);
      await rebuild.write(asRecords(events.slice(0, half)));
      const midway = await tableRows();
      assert.ok(midway.has('ghosts:1'), 'readers keep seeing every key while the new generation builds');
      // The old generation's writer is still live: replaying what the new generation already wrote changes nothing.
      await sink.write(asRecords(events.slice(0, half)));
      await rebuild.write(asRecords(events.slice(half)));
      await rebuild.promote();
      assert.equal(await sink.liveGeneration(), 2);
      assert.deepEqual(await tableRows(), expectedRows(events));
      // A late replay from the old generation (same change, equal source version) changes nothing: the new generation wrote it.
      const last = events.filter((e) => e.op !== 'd').at(-1)!;
      await sink.write(asRecords([{ ...last, after: { ...last.after, note: 'old generation' } }]));
      assert.deepEqual(await tableRows(), expectedRows(events));
    } finally {
      await rebuild.close();
    }
  });

  it('loses nothing when its connection is cut mid-write', async () => {
    const events = changeHistory({ changes: 2000, keysPerTable: 300, seed: 11 });
    const batches = randomBatches(asRecords(events), 400, seeded(5));
    let cuts = 0;
    for (const [i, batch] of batches.entries()) {
      if (i % 3 !== 0) {
        await sink.write(batch);
        continue;
      }
      // Hold the batch's commands in the server (a write pause), then cut the connection under them.
      await redis.call('CLIENT', 'PAUSE', '300', 'WRITE');
      const writing = sink.write(batch);
      await new Promise((resolve) => setTimeout(resolve, 50));
      cuts += Number(await redis.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes'));
      await writing;
    }
    assert.ok(cuts >= Math.ceil(batches.length / 3), `the sink's connection was cut under ${cuts} batches in flight`);
    // ioredis sends a cut pipeline again itself when no reply had arrived, else the sink sends the batch again.
    assert.deepEqual(await tableRows(), expectedRows(events));
  });
});
