import * as fs from 'node:fs';
import * as path from 'node:path';
import type { KafkaLogOptions } from './kafka-log';
import { describeTlsFailure, pemSource } from '../net/tls';
import { kafkaSecurity } from './kafka-security';
import { KafkaLogConfig } from './log-config';

/** The KafkaLog options behind log.ssl, log.sasl, log.createTopics and log.format: debezium. */
type Features = Pick<KafkaLogOptions, 'security' | 'createTopics' | 'debezium' | 'describeConnectError'>;

export function kafkaFeatures(config: KafkaLogConfig): Features {
  const features: Features = { security: kafkaSecurity(config) };
  if (config.ssl) {
    const [host, port] = config.brokers[0].split(':');
    const caFile = config.ssl === true ? undefined : pemSource(config.ssl.ca);
    features.describeConnectError = (error) => describeTlsFailure(error, { who: 'kafka log', host, port, caFile, caSetting: 'log.ssl.ca' });
  }
  if (config.createTopics) features.createTopics = config.createTopics;
  if (config.format === 'debezium') {
    features.debezium = {
      topicPrefix: config.debezium.topicPrefix,
      tombstones: config.debezium.tombstones,
      decimalHandling: config.debezium.decimalHandling,
      release: `tidewater-${packageVersion()}`,
      partitions: config.createTopics?.partitions ?? config.partitions,
    };
  }
  return features;
}

/** This package's version (package.json above dist/ or the sources). */
function packageVersion(): string {
  for (let dir = __dirname; path.dirname(dir) !== dir; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) return String((JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: string }).version ?? 'unknown');
  }
  return 'unknown';
}
