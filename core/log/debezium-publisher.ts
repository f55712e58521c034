import { Admin, Partitioners } from 'kafkajs';
import { ChangeEvent } from '../event/change-event';
import { debeziumConnector, DebeziumConnector, debeziumRecords, debeziumTopic, debeziumValues, TransactionOrder } from './debezium-format';
import { DecimalHandling } from './debezium/decimal';
import { OutgoingMessage } from './kafka-codec';
import { checkTopics, TopicCreation } from './kafka-topics';

/**
 * `log: { type: kafka, format: debezium }`: beside the native log, every event
 * is also written to a Debezium-shaped topic per table, so existing Debezium
 * consumers read them unchanged.
 *
 * How our own sinks still read their records: they never read these topics.
 * The sink runners consume the native topic(s), whose records keep the
 * internal event (version, unchanged TOAST columns, truncate fan-out to every
 * partition) the idempotent sinks need; the Debezium topics are an extra
 * output. Both are sent in the same produce requests of one append, which
 * resolves only once Kafka acknowledged all of them, so the source position
 * is acknowledged only after the Debezium records are durable too; a replay
 * after a crash may repeat them (at least once, as Debezium itself).
 *
 * Records are keyed by the primary-key object and partitioned as Kafka's
 * Java producer (and so Kafka Connect) would: murmur2 of the key bytes over
 * the topic's partition count. A truncate has no key and goes to partition 0.
 * Our sort key rides in the header `cdc.version`, outside Debezium's value.
 */
export interface DebeziumPublisherOptions {
  /** Topics are <topicPrefix><schema>.<table>; default <source name>. */
  topicPrefix?: string;
  tombstones: boolean;
  /** source.version, e.g. "tidewater-0.1.0". */
  release: string;
  /** Debezium's decimal.handling.mode (default precise, as Debezium). */
  decimalHandling?: DecimalHandling;
  /** Partitions a missing topic must have or is created with. */
  partitions: number;
  /** Creates missing topics (log.createTopics); without it a missing topic fails with the command that creates it. */
  create?: TopicCreation;
  brokers: string[];
  /** True for topics the native log reads: a Debezium topic there would be read by the sinks as foreign records. */
  isNativeTopic(topic: string): boolean;
}

export const VERSION_HEADER = 'cdc.version';

export class DebeziumPublisher {
  private readonly order = new TransactionOrder();
  private readonly partitionCounts = new Map<string, number>();
  private readonly partitioner = Partitioners.DefaultPartitioner();
  /** Sources seen as MariaDB (from a GTID), so their later snapshot and resync rows say "mariadb" too. */
  private readonly mariadbSources = new Set<string>();
  private readonly values;

  constructor(private readonly options: DebeziumPublisherOptions) {
    this.values = debeziumValues(options.decimalHandling);
  }

  topicOf(event: ChangeEvent): string {
    const topic = debeziumTopic(event, this.options.topicPrefix);
    if (!/^[A-Za-z0-9._-]{1,249}$/.test(topic)) {
      throw new Error(`kafka log (format: debezium): table ${event.source.schema}.${event.source.table} gives the Debezium topic name "${topic}", which Kafka refuses ([A-Za-z0-9._-], at most 249 characters); set log.debezium.topicPrefix`);
    }
    if (this.options.isNativeTopic(topic)) {
      throw new Error(
        `kafka log (format: debezium): the Debezium topic ${topic} would be one of the log's own topics, which the sinks read; ` +
          `set log.debezium.topicPrefix to a prefix outside log.topicPrefix`,
      );
    }
    return topic;
  }

  /** True for topics this publisher writes (checked here, with their own partition counts). */
  owns(topic: string): boolean {
    return this.partitionCounts.has(topic);
  }

  /** The Debezium messages of a batch, in order; missing topics are checked (or created) first. */
  async messagesOf(events: readonly ChangeEvent[], admin: Admin): Promise<OutgoingMessage[]> {
    const topics = events.map((e) => this.topicOf(e));
    await this.learnTopics([...new Set(topics)].filter((t) => !this.partitionCounts.has(t)), admin);
    const out: OutgoingMessage[] = [];
    events.forEach((event, i) => {
      const topic = topics[i];
      const connector = this.connectorOf(event);
      const records = debeziumRecords(event, { release: this.options.release, tombstones: this.options.tombstones, connector, values: this.values }, this.order.next(event));
      for (const { key, value, headers: keyChange } of records) {
        const headers = { [VERSION_HEADER]: event.source.version, ...keyChange };
        // A truncate's key is null, as Debezium writes it (kafkajs sends a null key as such).
        out.push({ topic, partition: this.partitionOf(topic, key), key: key as string, value, headers, bytes: (key?.length ?? 0) + (value?.length ?? 0) });
      }
    });
    return out;
  }

  private connectorOf(event: ChangeEvent): DebeziumConnector {
    const detected = debeziumConnector(event);
    if (detected === 'mariadb') this.mariadbSources.add(event.source.name);
    return this.mariadbSources.has(event.source.name) ? 'mariadb' : detected;
  }

  private partitionOf(topic: string, key: string | null): number {
    if (key === null) return 0;
    const count = this.partitionCounts.get(topic)!;
    const partitionMetadata = Array.from({ length: count }, (_, partitionId) => ({ partitionErrorCode: 0, partitionId, leader: 0, replicas: [0], isr: [0] }));
    return this.partitioner({ topic, partitionMetadata, message: { key: Buffer.from(key), value: null } });
  }

  private async learnTopics(topics: string[], admin: Admin): Promise<void> {
    if (topics.length === 0) return;
    // Debezium topics may have fewer partitions than the log (Debezium's own default is 1): only existence is required.
    await checkTopics(admin, topics, 1, this.options.brokers, this.options.create && { ...this.options.create, partitions: this.options.partitions });
    const { topics: described } = await admin.fetchTopicMetadata({ topics });
    for (const t of described) this.partitionCounts.set(t.name, t.partitions.length);
  }
}
