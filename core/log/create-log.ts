import { join } from 'node:path';
import { Logger } from '../runtime/logger';
import { ChangeLog } from './change-log';
import { FileLog } from './file-log';
import { KafkaLog } from './kafka-log';
import { kafkaFeatures } from './kafka-features';
import { LogConfig } from './log-config';

export interface LogContext {
  serviceName: string;
  dataDir: string;
  /** Tables of the configured sources (SCHEMA.TABLE or SCHEMA.*): a topic-per-table Kafka log checks their topics. */
  tables: string[];
  logger?: Logger;
}

/** The log backend the config names (`log.type`), not yet opened. */
export function createLog(config: LogConfig, context: LogContext): ChangeLog {
  if (config.type === 'embedded') {
    return new FileLog({
      dir: config.dir ?? join(context.dataDir, 'log'),
      partitions: config.partitions,
      segmentBytes: config.segmentBytes,
      durability: config.durability,
      compaction: config.compaction,
      logger: context.logger,
    });
  }
  return new KafkaLog({
    brokers: config.brokers,
    clientId: config.clientId,
    topic: config.topic ?? `${context.serviceName}.changes`,
    topicPerTable: config.topicPerTable,
    topicPrefix: config.topicPrefix ?? `${context.serviceName}.`,
    partitions: config.partitions,
    tables: context.tables,
    consumerGroupPrefix: config.consumerGroupPrefix ?? `${context.serviceName}.`,
    sessionTimeoutMs: config.sessionTimeoutMs,
    idempotent: config.idempotent,
    tombstones: config.tombstones,
    ...kafkaFeatures(config),
    logger: context.logger,
  });
}

/** Where the log lives, for messages. */
export function describeLog(config: LogConfig, context: Pick<LogContext, 'dataDir' | 'serviceName'>): string {
  if (config.type === 'embedded') return `embedded log in ${config.dir ?? join(context.dataDir, 'log')}`;
  const where = config.topicPerTable ? `topics ${config.topicPrefix ?? `${context.serviceName}.`}<schema>.<table>` : `topic ${config.topic ?? `${context.serviceName}.changes`}`;
  return `kafka log (${where} on ${config.brokers.join(',')})`;
}
