import { strict as assert } from 'node:assert';
import { Admin, ITopicConfig, Kafka, logLevel } from 'kafkajs';
import { checkTopics } from '../../core/log/kafka-topics';
import { kafkaLogConfig } from '../../core/log/log-config';

/**
 * log.createTopics. librdkafka's mock cluster does not implement CreateTopics
 * (docs/architecture.md §7), so here a stand-in admin records what the log asks kafkajs
 * for; with KAFKA_BROKERS set (host:port,...) the same is done against that
 * real cluster and the created topic is read back from it.
 */
class RecordingAdmin {
  readonly created: ITopicConfig[][] = [];
  constructor(private readonly topics: Map<string, number>, private readonly brokers = 3) {}
  async listTopics() {
    return [...this.topics.keys()];
  }
  async describeCluster() {
    return { brokers: Array.from({ length: this.brokers }, (_, i) => ({ nodeId: i + 1, host: '127.0.0.1', port: 9092 + i })), controller: 1, clusterId: 'x' };
  }
  async createTopics(request: { topics: ITopicConfig[]; waitForLeaders?: boolean }) {
    assert.equal(request.waitForLeaders, true, 'waits until the new partitions have leaders before producing');
    this.created.push(request.topics);
    for (const t of request.topics) this.topics.set(t.topic, t.numPartitions ?? 1);
    return true;
  }
  async fetchTopicMetadata({ topics }: { topics: string[] }) {
    return { topics: topics.map((name) => ({ name, partitions: Array.from({ length: this.topics.get(name) ?? 0 }, (_, partitionId) => ({ partitionId })) })) };
  }
}

const brokers = ['127.0.0.1:9092'];

describe('log.createTopics', () => {
  it('creates only the missing topics, compacted, with the replication factor the cluster can hold', async () => {
    const admin = new RecordingAdmin(new Map([['shop.public.items', 8]]));
    await checkTopics(admin as unknown as Admin, ['shop.public.items', 'shop.public.orders'], 8, brokers, { config: {} });
    assert.deepEqual(admin.created, [[{
      topic: 'shop.public.orders',
      numPartitions: 8,
      replicationFactor: 3,
      configEntries: [{ name: 'cleanup.policy', value: 'compact' }, { name: 'min.insync.replicas', value: '2' }],
    }]]);
  });

  it('takes partitions, replicationFactor and config from log.createTopics, config over the defaults', async () => {
    const admin = new RecordingAdmin(new Map(), 1);
    await checkTopics(admin as unknown as Admin, ['pg.public.customers'], 1, brokers, {
      partitions: 6, replicationFactor: 1, config: { 'cleanup.policy': 'compact,delete', 'retention.ms': 604800000 },
    });
    assert.deepEqual(admin.created[0], [{
      topic: 'pg.public.customers',
      numPartitions: 6,
      replicationFactor: 1,
      configEntries: [{ name: 'cleanup.policy', value: 'compact,delete' }, { name: 'retention.ms', value: '604800000' }],
    }]);
  });

  it('without it, a missing topic still stops the log with the command that creates it', async () => {
    const admin = new RecordingAdmin(new Map(), 1);
    await assert.rejects(checkTopics(admin as unknown as Admin, ['shop.changes'], 4, brokers), (error: Error) => {
      assert.match(error.message, /topic shop\.changes missing on 127\.0\.0\.1:9092/);
      assert.match(error.message, /kafka-topics\.sh --bootstrap-server 127\.0\.0\.1:9092 --create --topic shop\.changes --partitions 4 --replication-factor 1 --config cleanup\.policy=compact/);
      assert.match(error.message, /log\.createTopics/);
      return true;
    });
    assert.deepEqual(admin.created, []);
  });

  it('a refused creation names the topic, the likely causes and the command to run by hand', async () => {
    const admin = new RecordingAdmin(new Map(), 1);
    admin.createTopics = async () => {
      throw Object.assign(new Error('Topic creation errors'), { errors: [{ topic: 'shop.changes', message: 'Authorization failed' }] });
    };
    await assert.rejects(
      checkTopics(admin as unknown as Admin, ['shop.changes'], 4, brokers, { config: {} }),
      /creating topic shop\.changes on 127\.0\.0\.1:9092 failed \(log\.createTopics\): shop\.changes: Authorization failed\. Check the client's CreateTopics ACL.*kafka-topics\.sh/s,
    );
  });

  it('config: partitions other than log.partitions only for Debezium topics', () => {
    const base = { type: 'kafka', brokers, partitions: 4 };
    assert.equal(kafkaLogConfig.safeParse({ ...base, createTopics: { partitions: 4 } }).success, true);
    const refused = kafkaLogConfig.safeParse({ ...base, createTopics: { partitions: 2 } });
    assert.equal(refused.success, false);
    assert.match(JSON.stringify(refused.error?.issues), /log.partitions \(4\)/);
    assert.equal(kafkaLogConfig.safeParse({ ...base, format: 'debezium', createTopics: { partitions: 1, replicationFactor: 1, config: { 'retention.ms': 1000 } } }).success, true);
  });

  it('on a real broker (KAFKA_BROKERS): creates the topic with the asked partitions and config', async function () {
    const real = process.env.KAFKA_BROKERS;
    if (!real) {
      console.log('    skipped: set KAFKA_BROKERS=host:port[,...] to create a topic on a real cluster (the mock cannot)');
      this.skip();
    }
    const kafka = new Kafka({ clientId: 'tidewater-test', brokers: real!.split(','), logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    const topic = `tidewater-create-test-${process.pid}-${Date.now()}`;
    try {
      const replicas = Math.min(3, (await admin.describeCluster()).brokers.length);
      await checkTopics(admin, [topic], 3, real!.split(','), { config: { 'retention.ms': 3600000 } });
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      assert.equal(topics[0].partitions.length, 3);
      assert.equal(topics[0].partitions[0].replicas.length, replicas);
      const described = await admin.describeConfigs({ resources: [{ type: 2, name: topic, configNames: ['cleanup.policy', 'retention.ms'] }], includeSynonyms: false });
      const entries = Object.fromEntries(described.resources[0].configEntries.map((e) => [e.configName, e.configValue]));
      assert.deepEqual(entries, { 'cleanup.policy': 'compact', 'retention.ms': '3600000' });
    } finally {
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    }
  });
});
