import { Admin, Kafka, logLevel, LogEntry, Partitioners, Producer } from 'kafkajs';
import { ChangeEvent } from '../event/change-event';
import { Logger } from '../runtime/logger';
import { ChangeLog, ConsumeOptions } from './change-log';
import { messagesOf, OutgoingMessage } from './kafka-codec';
import { consumeGroup, HeldRange } from './kafka-consumer';
import { GroupOffsetSetter } from './kafka-group-offsets';
import { checkTopics, TopicCreation, TopicLayout } from './kafka-topics';
import { DebeziumPublisher, DebeziumPublisherOptions } from './debezium-publisher';
import { KafkaSecurity } from './kafka-security';
import { tlsHandshakeError } from './kafka-tls-probe';

export interface KafkaLogOptions {
  brokers: string[];
  clientId: string;
  /** The single topic (unused with topicPerTable). */
  topic: string;
  topicPerTable: boolean;
  /** With topicPerTable: topic = <topicPrefix><schema>.<table>. */
  topicPrefix: string;
  /** Partitions each topic must have. */
  partitions: number;
  /** Configured source tables (SCHEMA.TABLE or SCHEMA.*): their topics are checked at open. */
  tables?: string[];
  /** Consumer group = <consumerGroupPrefix><consumer name>. */
  consumerGroupPrefix: string;
  sessionTimeoutMs: number;
  idempotent: boolean;
  tombstones: boolean;
  /** Bytes per produce request (each partition's record batch stays below the broker's message.max.bytes). */
  maxSendBytes?: number;
  /** log.createTopics: missing topics are created instead of failing open() with the command to run. */
  createTopics?: TopicCreation;
  /** log.format: debezium: every append also writes Debezium-shaped topics (debezium-publisher.ts). */
  debezium?: Omit<DebeziumPublisherOptions, 'brokers' | 'isNativeTopic' | 'create'>;
  /** log.ssl / log.sasl as kafkajs takes them (kafka-security.ts). */
  security?: KafkaSecurity;
  /** A clearer error for a failed connection (a certificate check naming the broker and the CA file), if it is one. */
  describeConnectError?: (error: unknown) => Error | undefined;
  logger?: Logger;
}

/**
 * The Kafka backend of the change-event log (docs/architecture.md §1): one topic, or one
 * per table, keyed by table + primary key. append() resolves only once every
 * in-sync replica has the batch (acks=all), so the source acknowledges its
 * position only after Kafka did. Topics are never created here (their
 * retention is the operator's decision): open() checks them and names the
 * command that creates them.
 */
export class KafkaLog implements ChangeLog {
  readonly partitions: number;
  private readonly kafka: Kafka;
  private readonly layout: TopicLayout;
  private admin: Admin | undefined;
  private offsetSetter: GroupOffsetSetter | undefined;
  private producer: Promise<Producer> | undefined;
  private appending: Promise<unknown> = Promise.resolve();
  private readonly checkedTopics = new Set<string>();
  private readonly consuming = new Set<AbortController>();
  private closed = false;
  private readonly debezium: DebeziumPublisher | undefined;
  readonly readsSourceDetails: boolean;

  constructor(private readonly options: KafkaLogOptions) {
    this.partitions = options.partitions;
    this.layout = new TopicLayout(options);
    this.kafka = new Kafka({
      clientId: options.clientId,
      brokers: options.brokers,
      logLevel: logLevel.WARN,
      logCreator: () => (entry: LogEntry) => logKafkaJs(options.logger, entry),
      retry: { retries: 8, initialRetryTime: 300, maxRetryTime: 10_000 },
      ...options.security,
    });
    this.debezium = options.debezium && new DebeziumPublisher({
      ...options.debezium,
      brokers: options.brokers,
      create: options.createTopics,
      isNativeTopic: (topic) => this.layout.ownTopics([topic]).length > 0,
    });
    this.readsSourceDetails = this.debezium !== undefined;
  }

  async open(): Promise<void> {
    const ssl = this.options.security?.ssl;
    if (ssl && this.options.describeConnectError) {
      const handshake = await tlsHandshakeError(this.options.brokers[0], ssl);
      const explained = handshake && this.options.describeConnectError(handshake);
      if (explained) throw explained;
    }
    this.admin = this.kafka.admin({ retry: { retries: 3 } });
    await this.admin.connect().catch(this.explainConnectError);
    this.offsetSetter = new GroupOffsetSetter(this.kafka, this.admin, this.options.sessionTimeoutMs);
    const topics = this.layout.configuredTopics(this.options.tables ?? []);
    await checkTopics(this.admin, topics, this.partitions, this.options.brokers, this.options.createTopics).catch(this.explainConnectError);
    topics.forEach((t) => this.checkedTopics.add(t));
  }

  private readonly explainConnectError = (error: unknown): never => {
    throw this.options.describeConnectError?.(error) ?? error;
  };

  /** Appends in call order; each call resolves once Kafka acknowledged all its messages (acks=all). */
  append(events: readonly ChangeEvent[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('kafka log: closed; open a new KafkaLog to append'));
    const messages = events.flatMap((e) => messagesOf(e, this.layout.topicOf(e), this.partitions, this.options.tombstones));
    const run = this.appending.then(async () => this.send(this.debezium ? [...messages, ...(await this.debezium.messagesOf(events, this.admin!))] : messages));
    this.appending = run.catch(() => undefined);
    return run;
  }

  private async send(messages: OutgoingMessage[]): Promise<void> {
    const producer = await this.connectProducer();
    const unchecked = [...new Set(messages.map((m) => m.topic))].filter((t) => !this.checkedTopics.has(t) && !this.debezium?.owns(t));
    if (unchecked.length > 0) {
      await checkTopics(this.admin!, unchecked, this.partitions, this.options.brokers, this.options.createTopics);
      unchecked.forEach((t) => this.checkedTopics.add(t));
    }
    const limit = this.options.maxSendBytes ?? 512 * 1024;
    for (let i = 0; i < messages.length; ) {
      let bytes = 0;
      let j = i;
      while (j < messages.length && (j === i || bytes + messages[j].bytes <= limit)) bytes += messages[j++].bytes;
      await this.sendChunk(producer, messages.slice(i, j));
      i = j;
    }
  }

  private async sendChunk(producer: Producer, chunk: OutgoingMessage[]): Promise<void> {
    const byTopic = new Map<string, OutgoingMessage[]>();
    for (const m of chunk) byTopic.set(m.topic, [...(byTopic.get(m.topic) ?? []), m]);
    try {
      await producer.sendBatch({
        acks: -1,
        timeout: 30_000,
        topicMessages: [...byTopic].map(([topic, ms]) => ({
          topic,
          messages: ms.map(({ partition, key, value, headers }) => ({ partition, key, value, headers })),
        })),
      });
    } catch (error) {
      const largest = chunk.reduce((a, b) => (b.bytes > a.bytes ? b : a));
      const hint = /too large/i.test((error as Error).message)
        ? `; the largest message (key ${largest.key}) is ${largest.bytes} bytes: raise the topic's max.message.bytes`
        : '';
      throw new Error(`kafka log: appending ${chunk.length} messages to ${[...byTopic.keys()].join(', ')} failed: ${(error as Error).message}${hint}`);
    }
  }

  private connectProducer(): Promise<Producer> {
    this.producer ??= (async () => {
      if (this.options.idempotent) await this.checkController();
      const producer = this.kafka.producer({
        idempotent: this.options.idempotent,
        maxInFlightRequests: 1, // keeps per-partition order across retries
        allowAutoTopicCreation: false,
        createPartitioner: Partitioners.DefaultPartitioner, // unused: every message names its partition
      });
      await producer.connect();
      return producer;
    })().catch((error: Error) => {
      this.producer = undefined;
      throw error;
    });
    return this.producer;
  }

  /** kafkajs's idempotent producer asks the controller for a producer id: fail clearly when the cluster names none it knows. */
  private async checkController(): Promise<void> {
    const { brokers, controller } = await this.admin!.describeCluster();
    if (controller !== null && brokers.some((b) => b.nodeId === controller)) return;
    throw new Error(
      `kafka log: the cluster at ${this.options.brokers.join(',')} reports controller ${controller}, which is not one of its brokers ` +
        `(${brokers.map((b) => b.nodeId).join(', ')}), so the idempotent producer cannot get a producer id. ` +
        `librdkafka's mock cluster does this; there, set log.idempotent: false`,
    );
  }

  async endOffsets(): Promise<number[]> {
    const ends = new Array<number>(this.partitions).fill(0);
    for (const topic of await this.topics()) {
      for (const p of await this.admin!.fetchTopicOffsets(topic)) if (p.partition < this.partitions) ends[p.partition] += Number(p.high);
    }
    return ends;
  }

  async committedOffsets(consumer: string): Promise<number[]> {
    const topics = await this.topics();
    const committed = new Array<number>(this.partitions).fill(0);
    const groups = await this.admin!.fetchOffsets({ groupId: this.groupId(consumer), topics });
    for (const { topic, partitions } of groups) {
      const low = new Map((await this.admin!.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.low)]));
      // Never committed: the group would start at the log start offset.
      for (const p of partitions) if (p.partition < this.partitions) committed[p.partition] += Number(p.offset) >= 0 ? Number(p.offset) : low.get(p.partition) ?? 0;
    }
    return committed;
  }

  /** Sets a group's offset (Kafka allows this only while no process of the group runs). */
  async commit(consumer: string, partition: number, nextOffset: number): Promise<void> {
    if (this.layout.perTable) throw new Error('kafka log: with a topic per table a partition number names no single partition; commit through consume()');
    if (!this.offsetSetter) throw new Error('kafka log: not open; call open() first');
    await this.offsetSetter.set(this.groupId(consumer), this.options.topic, partition, nextOffset);
  }

  async consume(options: ConsumeOptions): Promise<void> {
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    options.signal.addEventListener('abort', onAbort, { once: true });
    if (options.signal.aborted) stop.abort();
    this.consuming.add(stop);
    try {
      const topics = this.layout.perTable ? await this.topics() : [this.options.topic];
      if (this.layout.perTable && topics.length === 0) {
        throw new Error(`kafka log: no topic named ${this.options.topicPrefix}<schema>.<table> exists yet; create the table topics first`);
      }
      await consumeGroup(
        this.kafka,
        {
          groupId: this.groupId(options.consumer),
          topics,
          partitions: this.partitions,
          sessionTimeoutMs: this.options.sessionTimeoutMs,
          singleTopic: !this.layout.perTable,
          heldOffsets: (topic) => this.heldOffsets(topic),
          committedOffsets: (topic) => this.groupOffsets(this.groupId(options.consumer), topic),
          logger: this.options.logger,
        },
        { ...options, signal: stop.signal },
      );
    } finally {
      options.signal.removeEventListener('abort', onAbort);
      this.consuming.delete(stop);
    }
  }

  /** Per partition of `topic`: the oldest offset still held and the high watermark. */
  private async heldOffsets(topic: string): Promise<Map<number, HeldRange>> {
    if (!this.admin) throw new Error('kafka log: not open; call open() first');
    const offsets = await this.admin.fetchTopicOffsets(topic);
    return new Map(offsets.map((p) => [p.partition, { low: Number(p.low), high: Number(p.high) }]));
  }

  /** Per partition of `topic`: the group's committed offset, -1 when it never committed. */
  private async groupOffsets(groupId: string, topic: string): Promise<Map<number, number>> {
    if (!this.admin) throw new Error('kafka log: not open; call open() first');
    const [group] = await this.admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map((group?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
  }

  groupId(consumer: string): string {
    return `${this.options.consumerGroupPrefix}${consumer}`;
  }

  private async topics(): Promise<string[]> {
    if (!this.admin) throw new Error('kafka log: not open; call open() first');
    if (!this.layout.perTable) return [this.options.topic];
    return this.layout.ownTopics(await this.admin.listTopics());
  }

  async close(): Promise<void> {
    this.closed = true;
    this.consuming.forEach((c) => c.abort());
    await this.appending;
    const producer = await this.producer?.catch(() => undefined);
    await producer?.disconnect().catch(() => undefined);
    await this.admin?.disconnect().catch(() => undefined);
  }
}

/** kafkajs's warnings and errors, with the broker's error text; rebalances are routine, so info. */
function logKafkaJs(logger: Logger | undefined, entry: LogEntry): void {
  const { message, error, broker } = entry.log as { message: string; error?: string; broker?: string };
  const text = `kafkajs: ${message}${error ? `: ${error}` : ''}`;
  const fields = broker ? { broker } : undefined;
  if (/rebalanc|re-joining/i.test(text)) logger?.info(text, fields);
  else logger?.warn(text, fields);
}
