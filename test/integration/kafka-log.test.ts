import { strict as assert } from 'node:assert';
import * as os from 'node:os';
import { ChangeLog } from '../../core/log/change-log';
import { createLog } from '../../core/log/create-log';
import { KafkaLogConfig, logConfig } from '../../core/log/log-config';
import { makeVersion } from '../../core/event/version';
import { LogOffsetGoneError } from '../../core/log/offset-gone';
import { makeEvent } from '../support/events';
import { consumeUntilCaughtUp } from '../support/log-reader';
import { KafkaMock, startKafkaMock } from '../support/servers';

describe('Kafka log (librdkafka mock cluster)', function () {
  this.timeout(60_000);
  let mock: KafkaMock;
  let logs: ChangeLog[] = [];

  before(async () => {
    mock = await startKafkaMock({
      brokers: 3,
      topics: [
        { name: 'small.changes', partitions: 2 },
        { name: 'shop.public.items', partitions: 4 },
        { name: 'shop.public.orders', partitions: 4 },
        { name: 'plain.changes', partitions: 4 },
        { name: 'retention.changes', partitions: 1 },
        { name: 'lagging.changes', partitions: 1 },
        { name: 'backlog.changes', partitions: 4 },
      ],
    });
  });
  after(async () => mock.stop());
  afterEach(async () => {
    await Promise.allSettled(logs.map((l) => l.close()));
    logs = [];
  });

  const config = (extra: Record<string, unknown>): KafkaLogConfig =>
    logConfig.parse({ type: 'kafka', brokers: mock.brokers, partitions: 4, sessionTimeoutMs: 6000, idempotent: false, ...extra }) as KafkaLogConfig;

  async function open(extra: Record<string, unknown>, tables: string[] = []): Promise<ChangeLog> {
    const log = createLog(config(extra), { serviceName: 'shop', dataDir: os.tmpdir(), tables });
    logs.push(log);
    await log.open();
    return log;
  }

  it('hands a backlog of small producer batches to the sink in large batches, each record once and in order', async () => {
    const log = await open({ topic: 'backlog.changes' });
    // 400 appends of 4 rows: one small producer batch per partition each, which the mock cluster returns one per fetch.
    let lsn = 1n;
    for (let round = 0; round < 400; round++) {
      const events = Array.from({ length: 4 }, (_, i) => makeEvent({ key: { id: round * 4 + i }, after: { id: round * 4 + i }, version: makeVersion(lsn++, 1) }));
      await log.append(events);
    }
    const ends = await log.endOffsets();
    const sizes: number[] = [];
    const got = await consumeUntilCaughtUp(log, 'backlog-reader', { maxBatch: 200, timeoutMs: 45_000, onBatch: (batch) => sizes.push(batch.records.length) });
    for (let p = 0; p < 4; p++) {
      const offsets = got[p].map((r) => r.offset);
      assert.deepEqual(offsets, [...offsets].sort((a, b) => a - b), `partition ${p} in offset order`);
      assert.equal(new Set(offsets).size, ends[p], `partition ${p}: each of its ${ends[p]} records once`);
    }
    const ids = got.flat().map((r) => Number((r.event.key as { id: number }).id)).sort((a, b) => a - b);
    assert.deepEqual(ids, Array.from({ length: 1600 }, (_, i) => i), 'every appended row, once');
    const average = sizes.reduce((a, b) => a + b, 0) / sizes.length;
    console.log(`      ${sizes.length} batches handed over for 1600 records (${average.toFixed(1)} on average, maxBatch 200)`);
    assert.ok(average >= 50, `a backlog reaches the sink in batches of ${average.toFixed(1)} records on average; expected at least 50`);
    assert.deepEqual(await log.committedOffsets('backlog-reader'), ends, 'committed to the end');
  });

  it('refuses a missing topic, naming the command that creates it compacted', async () => {
    await assert.rejects(open({ topic: 'absent.changes' }), (error: Error) => {
      assert.match(error.message, /topic absent\.changes missing on 127\.0\.0\.1:\d+/);
      assert.match(error.message, /kafka-topics\.sh --bootstrap-server 127\.0\.0\.1:\d+ --create --topic absent\.changes --partitions 4 --replication-factor 3 --config cleanup\.policy=compact/);
      return true;
    });
  });

  it('refuses a topic with fewer partitions than configured', async () => {
    await assert.rejects(open({ topic: 'small.changes' }), /topic small\.changes has 2 partitions but the log is configured for 4\. Configure log\.partitions: 2/);
  });

  it('says why the idempotent producer cannot start against the mock cluster', async () => {
    const log = await open({ topic: 'plain.changes', idempotent: true });
    await assert.rejects(log.append([makeEvent()]), /reports controller 0, which is not one of its brokers \(1, 2, 3\).*set log\.idempotent: false/);
  });

  it('puts each table in its own topic when topicPerTable is set, truncates in every partition of it', async () => {
    const log = await open({ topicPerTable: true }, ['public.items', 'public.orders']);
    const events = [
      ...Array.from({ length: 20 }, (_, id) => makeEvent({ table: id % 2 ? 'items' : 'orders', key: { id }, version: makeVersion(BigInt(id + 1), 1) })),
      makeEvent({ table: 'orders', op: 't', version: makeVersion(100n, 1) }),
    ];
    await log.append(events);
    const records = (await consumeUntilCaughtUp(log, 'per-table')).flat();
    const byTopic = (topic: string) => records.filter((r) => r.topic === topic);
    assert.equal(byTopic('shop.public.items').length, 10);
    assert.ok(byTopic('shop.public.items').every((r) => r.event.source.table === 'items'));
    assert.equal(byTopic('shop.public.orders').filter((r) => r.event.op === 't').length, 4, 'a truncate in each of the 4 partitions');
    assert.equal(byTopic('shop.public.orders').length, 10 + 4);
  });

  it('a topic-per-table log refuses a table whose topic was not created', async () => {
    const log = await open({ topicPerTable: true }, ['public.items']);
    await assert.rejects(log.append([makeEvent({ table: 'customers' })]), /topic shop\.public\.customers missing.*--create --topic shop\.public\.customers/s);
  });

  it('sets a stopped group\'s offsets (replay from zero) and reports lag as end minus committed', async () => {
    const log = await open({ topic: 'plain.changes', consumerGroupPrefix: 'lag.' });
    await log.append(Array.from({ length: 40 }, (_, id) => makeEvent({ key: { id }, version: makeVersion(BigInt(id + 1), 1) })));
    await consumeUntilCaughtUp(log, 'sink-x');
    const ends = await log.endOffsets();
    assert.deepEqual(await log.committedOffsets('sink-x'), ends);
    await Promise.all([0, 1, 2, 3].map((p) => log.commit('sink-x', p, 0)));
    assert.deepEqual(await log.committedOffsets('sink-x'), [0, 0, 0, 0]);
    const again = await consumeUntilCaughtUp(log, 'sink-x');
    assert.equal(again.flat().length, 40, 'the whole topic is read again');
  });

  // The mock keeps at most 5 MiB per partition and drops the oldest record batches past that, like
  // retention: the cause of the kill -9 divergence (a restarted sink resumed below the oldest record,
  // kafkajs logged `Offset out of range, resetting to default offset` and skipped to the earliest).
  const big = (from: number, count: number) =>
    Array.from({ length: count }, (_, i) => makeEvent({ key: { id: from + i }, after: { id: from + i, pad: 'x'.repeat(100_000) }, version: makeVersion(BigInt(from + i + 1), 1) }));

  it('stops a consumer whose committed offset the topic no longer holds, instead of resetting to the earliest', async () => {
    const log = await open({ topic: 'retention.changes', partitions: 1, consumerGroupPrefix: 'ret.' });
    await log.append(Array.from({ length: 5 }, (_, id) => makeEvent({ key: { id }, version: makeVersion(BigInt(id + 1), 1) })));
    await consumeUntilCaughtUp(log, 'sink-cache');
    assert.deepEqual(await log.committedOffsets('sink-cache'), [5]);
    for (let i = 0; i < 80; i += 10) await log.append(big(100 + i, 10));
    const seen: number[] = [];
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 30_000);
    try {
      await assert.rejects(
        log.consume({ consumer: 'sink-cache', signal: controller.signal, handle: async (b) => void seen.push(...b.records.map((r) => r.offset)) }),
        (error: Error) => {
          assert.ok(error instanceof LogOffsetGoneError, `a LogOffsetGoneError, got ${error.stack}`);
          assert.match(error.message, /next offset 5 on topic retention\.changes partition 0 is no longer held: the oldest offset still held is \d+/);
          assert.match(error.message, /cdc reprocess --sink cache/);
          return true;
        },
      );
    } finally {
      clearTimeout(timer);
    }
    assert.deepEqual(seen, [], 'no record after the gap was handed to the sink');
    assert.deepEqual(await log.committedOffsets('sink-cache'), [5], 'the committed offset stays where the sink stopped');
  });

  it('stops a lagging consumer when retention removes the records it is about to read', async () => {
    const log = await open({ topic: 'lagging.changes', partitions: 1, consumerGroupPrefix: 'lag2.' });
    await log.append(big(0, 4));
    const seen: number[] = [];
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    let first = true;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 40_000);
    const consuming = log.consume({
      consumer: 'sink-slow',
      signal: controller.signal,
      maxBatch: 1,
      handle: async (b) => {
        seen.push(...b.records.map((r) => r.offset));
        if (first) {
          first = false;
          // While the sink is busy with its first record, the topic outgrows its retention.
          for (let i = 0; i < 80; i += 10) await log.append(big(10 + i, 10));
          release();
        }
      },
    });
    try {
      await released;
      await assert.rejects(consuming, (error: Error) => {
        assert.ok(error instanceof LogOffsetGoneError, `a LogOffsetGoneError, got ${error.stack}`);
        assert.match(error.message, /on topic lagging\.changes partition 0 is no longer held/);
        return true;
      });
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
    assert.ok(seen.length > 0);
    assert.deepEqual(seen, Array.from({ length: seen.length }, (_, i) => i), 'the sink saw offsets from 0 with no gap, and nothing past the removed records');
  });
});
