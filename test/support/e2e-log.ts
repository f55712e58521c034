import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChangeLog } from '../../core/log/change-log';
import { createLog } from '../../core/log/create-log';
import { logConfig, LogConfig } from '../../core/log/log-config';
import { KafkaMock, startKafkaMock } from './kafka';

/**
 * The log an end-to-end test runs the service with, and a way to look into
 * it from the test: the embedded log in the fixture's data dir, or Kafka
 * (librdkafka's mock cluster, topics `<service name>.changes` made up front).
 */
export interface E2eLog {
  readonly type: 'embedded' | 'kafka';
  /** `names` are the service names the tests will use (Kafka: one topic each). */
  setUp(names: string[]): Promise<void>;
  tearDown(): Promise<void>;
  /** The `log:` mapping of the service's config. */
  yaml(): string;
  /** A client of a service's log; the embedded one only while that service is stopped (it is locked). */
  open(service: { name: string; dataDir: string }): Promise<ChangeLog>;
  /** A consumer's committed offsets, readable while the service runs. */
  committed(service: { name: string; dataDir: string }, consumer: string): Promise<number[]>;
}

const PARTITIONS = 4;

export class EmbeddedE2eLog implements E2eLog {
  readonly type = 'embedded';
  async setUp(): Promise<void> {}
  async tearDown(): Promise<void> {}

  yaml(): string {
    return `{ type: embedded, partitions: ${PARTITIONS} }`;
  }

  private config(dataDir: string): LogConfig {
    return logConfig.parse({ type: 'embedded', partitions: PARTITIONS, dir: join(dataDir, 'var', 'log'), compaction: { enabled: false } });
  }

  async open(service: { name: string; dataDir: string }): Promise<ChangeLog> {
    const log = createLog(this.config(service.dataDir), { serviceName: service.name, dataDir: join(service.dataDir, 'var'), tables: [] });
    await log.open();
    return log;
  }

  async committed(service: { dataDir: string }, consumer: string): Promise<number[]> {
    const file = join(service.dataDir, 'var', 'log', 'consumers', `${consumer}.json`);
    return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { offsets: number[] }).offsets : new Array<number>(PARTITIONS).fill(0);
  }
}

export class KafkaE2eLog implements E2eLog {
  readonly type = 'kafka';
  private mock: KafkaMock | undefined;

  async setUp(names: string[]): Promise<void> {
    this.mock = await startKafkaMock({ brokers: 3, topics: names.map((n) => ({ name: `${n}.changes`, partitions: PARTITIONS })) });
  }

  async tearDown(): Promise<void> {
    await this.mock?.stop();
  }

  /** Idempotence is off: the mock reports a controller kafkajs cannot find (docs/architecture.md §7). */
  yaml(): string {
    return `{ type: kafka, brokers: [${this.mock!.brokers.join(', ')}], partitions: ${PARTITIONS}, sessionTimeoutMs: 6000, idempotent: false }`;
  }

  async open(service: { name: string; dataDir: string }): Promise<ChangeLog> {
    const config = logConfig.parse({ type: 'kafka', brokers: this.mock!.brokers, partitions: PARTITIONS, sessionTimeoutMs: 6000, idempotent: false });
    const log = createLog(config, { serviceName: service.name, dataDir: service.dataDir, tables: [] });
    await log.open();
    return log;
  }

  async committed(service: { name: string; dataDir: string }, consumer: string): Promise<number[]> {
    const log = await this.open(service);
    try {
      return await log.committedOffsets(consumer);
    } finally {
      await log.close();
    }
  }
}
