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

/** `log.createTopics`: how missing topics are created (Kafka Connect's topic.creation.* in spirit). */
export interface TopicCreation {
  /** Partitions of a created topic; default the partitions the check requires. */
  partitions?: number;
  /** Default: the smaller of 3 and the number of brokers. */
  replicationFactor?: number;
  /** Topic configs over the defaults cleanup.policy=compact and min.insync.replicas=<replicas - 1>. */
  config?: Record<string, string | number | boolean>;
}

/** The topic configs a created topic gets: compacted (the log stays a complete copy of every row), unless overridden. */
export function creationConfig(replicas: number, config: TopicCreation['config'] = {}): Record<string, string> {
  const defaults: Record<string, string> = { 'cleanup.policy': 'compact' };
  if (replicas > 1) defaults['min.insync.replicas'] = String(replicas - 1);
  return { ...defaults, ...Object.fromEntries(Object.entries(config).map(([k, v]) => [k, String(v)])) };
}

/**
 * Fails unless every topic exists with at least `partitions` partitions.
 * Without `create` the log never creates topics (their retention is the
 * operator's choice): the error prints the command that creates them
 * compacted. With `create` (log.createTopics) missing topics are created.
 */
export async function checkTopics(admin: Admin, topics: readonly string[], partitions: number, brokers: readonly string[], create?: TopicCreation): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const brokerCount = (await admin.describeCluster()).brokers.length;
  const replicas = create?.replicationFactor ?? Math.min(3, brokerCount);
  const configs = creationConfig(replicas, create?.config);
  const createdPartitions = Math.max(partitions, create?.partitions ?? partitions);
  const command = (topic: string) =>
    `  kafka-topics.sh --bootstrap-server ${brokers[0]} --create --topic ${topic} --partitions ${createdPartitions} ` +
    `--replication-factor ${replicas}${Object.entries(configs).map(([k, v]) => ` --config ${k}=${v}`).join('')}`;
  const missing = topics.filter((t) => !existing.has(t));
  if (missing.length > 0 && create) {
    await createTopics(admin, missing, createdPartitions, replicas, configs, brokers, command);
  } else if (missing.length > 0) {
    throw new Error(
      `kafka log: topic${missing.length > 1 ? 's' : ''} ${missing.join(', ')} missing on ${brokers.join(',')}. ` +
        `Create ${missing.length > 1 ? 'them' : 'it'} (compacted, so the log stays a complete copy of every row), ` +
        `or let the service create missing topics with log.createTopics: {}:\n${missing.map(command).join('\n')}`,
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

async function createTopics(
  admin: Admin, missing: string[], partitions: number, replicas: number, configs: Record<string, string>,
  brokers: readonly string[], command: (topic: string) => string,
): Promise<void> {
  try {
    // false when another process created them meanwhile: the check below still runs.
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((topic) => ({
        topic,
        numPartitions: partitions,
        replicationFactor: replicas,
        configEntries: Object.entries(configs).map(([name, value]) => ({ name, value })),
      })),
    });
  } catch (error) {
    const detail = (error as { errors?: Array<{ topic?: string; message?: string }> }).errors?.map((e) => `${e.topic}: ${e.message}`).join('; ');
    throw new Error(
      `kafka log: creating topic${missing.length > 1 ? 's' : ''} ${missing.join(', ')} on ${brokers.join(',')} failed ` +
        `(log.createTopics): ${detail || (error as Error).message}. Check the client's CreateTopics ACL and the replication factor ` +
        `(${replicas}) against the number of brokers, or create ${missing.length > 1 ? 'them' : 'it'} by hand:\n${missing.map(command).join('\n')}`,
    );
  }
}
