import { Admin } from 'kafkajs';
import { ChangeEvent } from '../event/change-event';

const TOPIC = /^[A-Za-z0-9._-]{1,249}$/;

export interface TopicLayoutOptions {
  /** The single topic; unused with topicPerTable. */
  topic: string;
  topicPerTable: boolean;
  /** With topicPerTable: topic = <topicPrefix><schema>.<table>. */
  topicPrefix: string;
}

/** Which topic an event goes to, and which topics a consumer reads. */
export class TopicLayout {
  constructor(private readonly options: TopicLayoutOptions) {}

  get perTable(): boolean {
    return this.options.topicPerTable;
  }

  topicOf(event: ChangeEvent): string {
    if (!this.options.topicPerTable) return this.options.topic;
    return this.tableTopic(event.source.schema, event.source.table);
  }

  tableTopic(schema: string, table: string): string {
    const topic = `${this.options.topicPrefix}${schema}.${table}`;
    if (!TOPIC.test(topic)) {
      throw new Error(
        `kafka log: table ${schema}.${table} cannot have its own topic: "${topic}" is not a valid Kafka topic name ` +
          `([A-Za-z0-9._-], at most 249 characters); use a single topic (topicPerTable: false)`,
      );
    }
    return topic;
  }

  /** Topics known from the config: the single topic, or one per listed table (SCHEMA.* entries are found at run time). */
  configuredTopics(tables: readonly string[]): string[] {
    if (!this.options.topicPerTable) return [this.options.topic];
    return [...new Set(tables.filter((t) => !t.endsWith('.*')).map((t) => this.tableTopic(t.slice(0, t.indexOf('.')), t.slice(t.indexOf('.') + 1))))];
  }

  /** Of the cluster's topics, those this log reads. */
  ownTopics(all: readonly string[]): string[] {
    if (!this.options.topicPerTable) return all.filter((t) => t === this.options.topic);
    return all.filter((t) => t.startsWith(this.options.topicPrefix) && !t.startsWith('__')).sort();
  }
}

/**
 * Fails unless every topic exists with at least `partitions` partitions.
 * The log never creates topics: their retention is the operator's choice, so
 * the error prints the command that creates them compacted.
 */
export async function checkTopics(admin: Admin, topics: readonly string[], partitions: number, brokers: readonly string[]): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const replicas = Math.min(3, (await admin.describeCluster()).brokers.length);
  const create = (topic: string) =>
    `  kafka-topics.sh --bootstrap-server ${brokers[0]} --create --topic ${topic} --partitions ${partitions} ` +
    `--replication-factor ${replicas} --config cleanup.policy=compact${replicas > 1 ? ` --config min.insync.replicas=${replicas - 1}` : ''}`;
  const missing = topics.filter((t) => !existing.has(t));
  if (missing.length > 0) {
    throw new Error(
      `kafka log: topic${missing.length > 1 ? 's' : ''} ${missing.join(', ')} missing on ${brokers.join(',')}. ` +
        `Create ${missing.length > 1 ? 'them' : 'it'} (compacted, so the log stays a complete copy of every row):\n${missing.map(create).join('\n')}`,
    );
  }
  // Only existing topics are asked for: metadata requests for missing ones may auto-create them.
  const { topics: described } = await admin.fetchTopicMetadata({ topics: [...topics] });
  for (const t of described) {
    if (t.partitions.length < partitions) {
      throw new Error(
        `kafka log: topic ${t.name} has ${t.partitions.length} partitions but the log is configured for ${partitions}. ` +
          `Configure log.partitions: ${t.partitions.length}, or, only while the topic is still empty (rows hash to partitions, ` +
          `so adding some to a topic with data breaks per-row order), add partitions:\n` +
          `  kafka-topics.sh --bootstrap-server ${brokers[0]} --alter --topic ${t.name} --partitions ${partitions}`,
      );
    }
  }
}
