import type { ConnectionOptions } from 'node:tls';
import type { SASLOptions } from 'kafkajs';
import { readPem } from '../net/tls';
import { KafkaLogConfig } from './log-config';

/** What kafkajs's `new Kafka({ ssl, sasl })` takes, built from `log.ssl` and `log.sasl` (PEM files read here). */
export interface KafkaSecurity {
  ssl?: true | ConnectionOptions;
  sasl?: SASLOptions;
}

export function kafkaSecurity(config: Pick<KafkaLogConfig, 'ssl' | 'sasl'>): KafkaSecurity {
  const security: KafkaSecurity = {};
  if (config.ssl === true) {
    security.ssl = true;
  } else if (config.ssl) {
    const { ca, cert, key, servername } = config.ssl;
    const options: ConnectionOptions = { rejectUnauthorized: true };
    if (ca) options.ca = [readPem(ca, 'log.ssl.ca')];
    if (cert) options.cert = readPem(cert, 'log.ssl.cert');
    if (key) options.key = readPem(key, 'log.ssl.key');
    if (servername) options.servername = servername;
    security.ssl = options;
  }
  if (config.sasl) {
    const { mechanism, username, password } = config.sasl;
    security.sasl = { mechanism, username, password } as SASLOptions;
  }
  return security;
}
