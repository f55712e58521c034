import { strict as assert } from 'node:assert';
import * as os from 'node:os';
import { Kafka, KafkaMessage, logLevel, Partitioners } from 'kafkajs';
import { ChangeEvent } from '../../core/event/change-event';
import { makeVersion } from '../../core/event/version';
import { ChangeLog } from '../../core/log/change-log';
import { createLog } from '../../core/log/create-log';
import { KafkaLogConfig, logConfig } from '../../core/log/log-config';
import { consumeUntilCaughtUp } from '../support/log-reader';
import { KafkaMock, startKafkaMock } from '../support/servers';

/** With KAFKA_BROKERS (host:port,...) these tests run on that cluster, creating uniquely named topics (log.createTopics). */
const realBrokers = process.env.KAFKA_BROKERS?.split(',');
const run = realBrokers ? `-${process.pid}-${Date.now()}` : '';
const [NATIVE, PG, LEGACY] = [`shop${run}`, `pg${run}`, `legacy${run}`];

/**
 * log.format: debezium: a plain Kafka consumer (what a Debezium consumer is)
 * reads Debezium's envelope from <prefix><schema>.<table>, while the log's own
 * consumers (the sinks) still read only native events.
 */
describe(`Debezium topics beside the Kafka log (${realBrokers ? `Kafka at ${realBrokers.join(',')}` : 'librdkafka mock cluster'})`, function () {
  this.timeout(60_000);
  let mock: KafkaMock | undefined;
  let brokers: string[];
  let logs: ChangeLog[] = [];

  before(async () => {
    if (realBrokers) {
      brokers = realBrokers;
      return;
    }
    mock = await startKafkaMock({
      brokers: 1,
      topics: [
        { name: `${NATIVE}.changes`, partitions: 4 },
        { name: `${PG}.public.customers`, partitions: 3 },
        { name: `${LEGACY}.inventory.customers`, partitions: 3 },
      ],
    });
    brokers = mock.brokers;
  });
  after(async () => {
    if (realBrokers) {
      const admin = new Kafka({ clientId: 'cleanup', brokers, logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      const ours = (await admin.listTopics()).filter((t) => t.includes(run));
      await admin.deleteTopics({ topics: ours }).catch(() => undefined);
      await admin.disconnect();
    }
    await mock?.stop();
  });
  afterEach(async () => {
    await Promise.allSettled(logs.map((l) => l.close()));
    logs = [];
  });

  async function open(extra: Record<string, unknown>): Promise<ChangeLog> {
    // The mock cannot create topics (they exist from the start); a real cluster gets them made.
    const create = realBrokers && !('createTopics' in extra) ? { createTopics: { partitions: 3 } } : {};
    const config = logConfig.parse({ type: 'kafka', brokers, partitions: 4, sessionTimeoutMs: 6000, idempotent: false, topic: `${NATIVE}.changes`, ...create, ...extra }) as KafkaLogConfig;
    const log = createLog(config, { serviceName: 'shop', dataDir: os.tmpdir(), tables: [] });
    logs.push(log);
    await log.open();
    return log;
  }

  /** Reads `count` messages of `topic` from the start, as any Kafka consumer would. */
  async function readTopic(topic: string, count: number): Promise<Array<{ partition: number; message: KafkaMessage }>> {
    const kafka = new Kafka({ clientId: 'debezium-reader', brokers, logLevel: logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: `reader-${topic}-${Date.now()}`, sessionTimeout: 6000 });
    const got: Array<{ partition: number; message: KafkaMessage }> = [];
    await consumer.connect();
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`read ${got.length} of ${count} messages of ${topic} in 30 s`)), 30_000);
        void consumer.run({
          eachMessage: async ({ partition, message }) => {
            got.push({ partition, message });
            if (got.length >= count) {
              clearTimeout(timer);
              resolve();
            }
          },
        });
      });
    } finally {
      await consumer.disconnect();
    }
    return got;
  }

  const pg = (op: ChangeEvent['op'], id: number, index: number, row: Record<string, unknown> | null, before: Record<string, unknown> | null = null): ChangeEvent => ({
    op,
    key: op === 't' ? {} : { id },
    before,
    after: row,
    source: { connector: 'postgresql', name: PG, db: 'shop', schema: 'public', table: 'customers', position: '0/16E9058', version: makeVersion(24023128n, index), txId: '555', ts_ms: 1559033904863 },
    ts_ms: 1559033904900,
  });

  it('writes Debezium envelopes keyed by primary key, a tombstone after each delete, in the partition Kafka\'s own producer picks', async () => {
    const log = await open({ format: 'debezium' });
    const events = [
      pg('c', 1, 1, { id: 1, email: 'a@x' }),
      pg('c', 2, 2, { id: 2, email: 'b@x' }),
      pg('u', 1, 3, { id: 1, email: 'a2@x' }, { id: 1 }),
      pg('d', 2, 4, null, { id: 2, email: 'b@x' }),
      pg('t', 0, 5, null),
    ];
    await log.append(events);

    const messages = await readTopic(`${PG}.public.customers`, 6);
    const values = messages.map(({ message }) => (message.value === null ? null : JSON.parse(message.value.toString())));
    const keys = messages.map(({ message }) => (message.key === null ? null : JSON.parse(message.key.toString())));

    // Per key, in order: id 1 → c, u; id 2 → c, d, tombstone; the truncate has no key.
    const ofKey = (id: number) => messages.map((m, i) => ({ ...m, value: values[i], key: keys[i] })).filter((m) => m.key?.id === id);
    assert.deepEqual(ofKey(1).map((m) => m.value.op), ['c', 'u']);
    assert.deepEqual(ofKey(2).map((m) => m.value?.op ?? 'tombstone'), ['c', 'd', 'tombstone']);
    assert.deepEqual(ofKey(2)[2].key, { id: 2 }, 'the tombstone has the delete\'s key');
    const truncate = messages.find((_, i) => keys[i] === null)!;
    assert.equal(JSON.parse(truncate.message.value!.toString()).op, 't');
    assert.equal(truncate.partition, 0);

    // Kafka's default (murmur2) partitioner over the topic's 3 partitions, as Kafka Connect would place them.
    const partitioner = Partitioners.DefaultPartitioner();
    const partitionMetadata = [0, 1, 2].map((partitionId) => ({ partitionErrorCode: 0, partitionId, leader: 1, replicas: [1], isr: [1] }));
    for (const id of [1, 2]) {
      const expected = partitioner({ topic: `${PG}.public.customers`, partitionMetadata, message: { key: Buffer.from(JSON.stringify({ id })), value: null } });
      assert.ok(ofKey(id).every((m) => m.partition === expected), `key ${id} in partition ${expected}`);
    }

    const update = ofKey(1)[1].value;
    assert.deepEqual(update.before, { id: 1 });
    assert.deepEqual(update.after, { id: 1, email: 'a2@x' });
    assert.deepEqual(update.source, {
      version: 'tidewater-0.1.0', connector: 'postgresql', name: PG, ts_ms: 1559033904863, ts_us: 1559033904863000, ts_ns: 1559033904863000000,
      snapshot: 'false', db: 'shop', sequence: '[null,"24023128"]', schema: 'public', table: 'customers', txId: 555, lsn: 24023128, xmin: null,
    });
    assert.deepEqual(update.transaction, { id: '555:24023128', total_order: 3, data_collection_order: 3 });
    assert.equal(ofKey(1)[1].message.headers?.['cdc.version']?.toString(), makeVersion(24023128n, 3), 'our sort key rides in a header');

    // The sinks' view is unchanged: the native topic holds the internal events, nothing else.
    const native = (await consumeUntilCaughtUp(log, 'sink')).flat();
    assert.equal(native.filter((r) => r.topic === `${NATIVE}.changes`).length, native.length);
    assert.deepEqual(native.map((r) => r.event.source.version).sort(), events.flatMap((e) => (e.op === 't' ? Array(4).fill(e.source.version) : [e.source.version])).sort());
  });

  it('names MySQL topics <prefix><database>.<table> and MariaDB sources connector "mariadb"', async () => {
    const log = await open({ format: 'debezium', debezium: { topicPrefix: `${LEGACY}.` } });
    const event: ChangeEvent = {
      op: 'c', key: { id: 1004 }, before: null, after: { id: 1004, first_name: 'Anne' },
      source: { connector: 'mysql', name: 'maria', db: 'inventory', schema: 'inventory', table: 'customers', position: 'binlog.000003:154', version: makeVersion((3n << 40n) | 154n, 1), txId: '0-1-42', ts_ms: 1465491411000 },
      ts_ms: 1465491411815,
    };
    await log.append([event]);
    const [{ message }] = await readTopic(`${LEGACY}.inventory.customers`, 1);
    const value = JSON.parse(message.value!.toString());
    assert.equal(value.source.connector, 'mariadb');
    assert.deepEqual({ file: value.source.file, pos: value.source.pos, row: value.source.row, gtid: value.source.gtid, server_id: value.source.server_id }, { file: 'binlog.000003', pos: 154, row: 0, gtid: '0-1-42', server_id: 1 });
  });

  it('without createTopics, a missing Debezium topic stops the append with the command that creates it', async () => {
    const log = await open({ format: 'debezium', createTopics: undefined });
    await assert.rejects(log.append([{ ...pg('c', 1, 1, { id: 1 }), source: { ...pg('c', 1, 1, null).source, table: 'orders' } }]),
      new RegExp(`topic ${PG}\\.public\\.orders missing on .*kafka-topics\\.sh --bootstrap-server \\S+ --create --topic ${PG}\\.public\\.orders`, 's'));
  });

  it('refuses Debezium topics that the log itself would read', async () => {
    await assert.rejects(async () => open({ format: 'debezium', topicPerTable: true, topicPrefix: `${NATIVE}.`, debezium: { topicPrefix: `${NATIVE}.dbz.` } }), /give the Debezium topics a prefix that neither contains nor is contained in it/);
  });
});
