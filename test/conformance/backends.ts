import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { ChangeEvent } from '../../core/event/change-event';
import { ChangeLog } from '../../core/log/change-log';
import { createLog, LogContext } from '../../core/log/create-log';
import { FileLog } from '../../core/log/file-log';
import { LogConfig, logConfig } from '../../core/log/log-config';
import { KafkaMock, startKafkaMock } from '../support/servers';

/** A log backend as the conformance suite drives it: fresh logs built from config, like the service does. */
export interface LogBackend {
  readonly name: string;
  setUp(): Promise<void>;
  tearDown(): Promise<void>;
  /** Config and context of a new, empty log with `partitions` partitions. */
  fresh(partitions: number): Promise<{ config: LogConfig; context: LogContext }>;
  /** Runs compaction now, when the backend can be told to. */
  compact?(log: ChangeLog): Promise<void>;
  /**
   * For a backend compacted by its server on its own schedule (Kafka): the
   * event that compaction would keep per compaction key, read from the raw
   * records of the last fresh log (null value = tombstone: the key goes).
   */
  keptByCompaction?(): Promise<Map<string, ChangeEvent>>;
}

export function openFromConfig(config: LogConfig, context: LogContext): ChangeLog {
  return createLog(config, context);
}

export class EmbeddedBackend implements LogBackend {
  readonly name = 'embedded';
  private dirs: string[] = [];

  async setUp(): Promise<void> {}

  async tearDown(): Promise<void> {
    await Promise.all(this.dirs.map((d) => fs.rm(d, { recursive: true, force: true })));
    this.dirs = [];
  }

  async fresh(partitions: number) {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'log-conformance-'));
    this.dirs.push(dir);
    // Small segments, so compaction has sealed segments to work on; compaction runs only when asked.
    const config = logConfig.parse({ type: 'embedded', partitions, dir: path.join(dir, 'log'), segmentBytes: 64 * 1024, compaction: { enabled: false } });
    return { config, context: { serviceName: 'conformance', dataDir: dir, tables: [] } };
  }

  async compact(log: ChangeLog): Promise<void> {
    await (log as FileLog).compact();
  }
}

/**
 * Kafka: librdkafka's mock cluster (docs/architecture.md §7), or a real cluster when
 * KAFKA_BROKERS is set. The mock cannot create topics through the API and
 * reports controller id 0, which kafkajs's idempotent producer cannot use,
 * so topics are made when the mock starts and idempotence is off there.
 */
export class KafkaBackend implements LogBackend {
  readonly name = 'kafka';
  private mock: KafkaMock | undefined;
  private brokers: string[] = [];
  private used = 0;
  private lastTopic = '';
  private readonly real = process.env.KAFKA_BROKERS;
  private readonly run = `${process.pid}-${Date.now().toString(36)}`;

  constructor(private readonly topicsNeeded = 12, private readonly partitions = 4) {}

  async setUp(): Promise<void> {
    if (this.real) {
      this.brokers = this.real.split(',');
      return;
    }
    const topics = Array.from({ length: this.topicsNeeded }, (_, i) => ({ name: this.topic(i), partitions: this.partitions }));
    this.mock = await startKafkaMock({ brokers: 3, topics });
    this.brokers = this.mock.brokers;
  }

  async tearDown(): Promise<void> {
    await this.mock?.stop();
  }

  private topic(i: number): string {
    return this.real ? `tidewater-conformance-${this.run}-${i}` : `conformance-${i}`;
  }

  async fresh(partitions: number) {
    if (partitions !== this.partitions) throw new Error(`the kafka backend's topics have ${this.partitions} partitions`);
    if (this.used >= this.topicsNeeded) throw new Error(`the kafka backend made only ${this.topicsNeeded} topics; raise topicsNeeded`);
    const topic = this.topic(this.used++);
    this.lastTopic = topic;
    if (this.real) await this.createTopic(topic);
    const config = logConfig.parse({
      type: 'kafka',
      brokers: this.brokers,
      topic,
      partitions,
      sessionTimeoutMs: 6000,
      idempotent: Boolean(this.real),
      consumerGroupPrefix: `${topic}.`,
    });
    return { config, context: { serviceName: 'conformance', dataDir: os.tmpdir(), tables: [] } };
  }

  async keptByCompaction(): Promise<Map<string, ChangeEvent>> {
    const kafka = new Kafka({ brokers: this.brokers, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(this.lastTopic);
    await admin.disconnect();
    let remaining = ends.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
    const kept = new Map<string, ChangeEvent>();
    const consumer = kafka.consumer({ groupId: `${this.lastTopic}.raw-${Date.now()}`, sessionTimeout: 6000 });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: this.lastTopic, fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        if (remaining === 0) return resolve();
        consumer
          .run({
            eachMessage: async ({ message }) => {
              const key = message.key!.toString('utf8');
              const event = message.value === null ? null : (JSON.parse(message.value.toString('utf8')) as ChangeEvent);
              if (!event || event.op === 'd') kept.delete(key); // a tombstone (or a delete, when tombstones are off)
              else kept.set(key, event);
              if (--remaining === 0) resolve();
            },
          })
          .catch(reject);
      });
    } finally {
      await consumer.disconnect();
    }
    return kept;
  }

  private async createTopic(topic: string): Promise<void> {
    const admin = new Kafka({ brokers: this.brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: this.partitions, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }], waitForLeaders: true });
    } finally {
      await admin.disconnect();
    }
  }
}
