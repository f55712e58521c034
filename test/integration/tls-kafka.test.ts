import { strict as assert } from 'node:assert';
import * as os from 'node:os';
import type { KafkaConfig } from 'kafkajs';
import { makeVersion } from '../../core/event/version';
import { ChangeLog } from '../../core/log/change-log';
import { createLog } from '../../core/log/create-log';
import { KafkaLogConfig, logConfig } from '../../core/log/log-config';
import { makeEvent } from '../support/events';
import { consumeUntilCaughtUp } from '../support/log-reader';
import { KafkaMock, startKafkaMock } from '../support/servers';
import { makeCa, startTlsProxy, TestCa, TlsProxy } from '../support/tls-ca';

// The module object kafka-log.js reads `Kafka` from (a namespace import would be a copy).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const kafkajs = require('kafkajs') as typeof import('kafkajs');

/**
 * log.ssl and log.sasl. librdkafka's mock cluster speaks plain text only, so
 * here: (1) the options reach kafkajs's client config; (2) kafkajs really
 * does the TLS handshake with them (a TLS proxy that requires a client
 * certificate of the test CA, in front of the mock) and goes on to SASL
 * authentication (the mock implements no SaslHandshake, so it stops there). With KAFKA_BROKERS (and KAFKA_SSL_CA, and
 * KAFKA_SASL_MECHANISM/USERNAME/PASSWORD) the log appends and reads back on
 * that real cluster over TLS/SASL.
 */
describe('TLS and SASL for the Kafka log', function () {
  this.timeout(60_000);
  let ca: TestCa;
  let mock: KafkaMock;
  let proxy: TlsProxy;
  let client: { certFile: string; keyFile: string };
  const logs: ChangeLog[] = [];

  before(async () => {
    ca = makeCa();
    client = ca.issue('kafka-client', { client: true, commonName: 'tidewater-producer' });
    mock = await startKafkaMock({ brokers: 1, topics: [{ name: 'shop.changes', partitions: 2 }] });
    proxy = await startTlsProxy({ targetPort: Number(mock.brokers[0].split(':')[1]), ...ca.issue('broker'), caFile: ca.caFile, requireClientCert: true });
  });
  after(async () => {
    await Promise.allSettled(logs.map((l) => l.close()));
    await proxy?.stop();
    await mock?.stop();
  });

  const parse = (extra: Record<string, unknown>): KafkaLogConfig =>
    logConfig.parse({ type: 'kafka', brokers: [`127.0.0.1:${proxy.port}`], partitions: 2, idempotent: false, sessionTimeoutMs: 6000, topic: 'shop.changes', ...extra }) as KafkaLogConfig;

  /** The config kafkajs's Kafka constructor receives from createLog(). */
  function kafkaConfigOf(config: KafkaLogConfig): KafkaConfig {
    const original = kafkajs.Kafka;
    let seen: KafkaConfig | undefined;
    kafkajs.Kafka = class extends original {
      constructor(c: KafkaConfig) {
        super(c);
        seen = c;
      }
    };
    try {
      createLog(config, { serviceName: 'shop', dataDir: os.tmpdir(), tables: [] });
    } finally {
      kafkajs.Kafka = original;
    }
    assert.ok(seen, 'createLog made a kafkajs client');
    return seen;
  }

  it('log.ssl (CA, client certificate and key, read from the files) and log.sasl reach the kafkajs client config', () => {
    const config = kafkaConfigOf(parse({
      ssl: { ca: ca.caFile, cert: client.certFile, key: client.keyFile },
      sasl: { mechanism: 'scram-sha-512', username: 'cdc', password: 's3cret' },
    }));
    const ssl = config.ssl as { ca: string[]; cert: string; key: string; rejectUnauthorized: boolean };
    assert.match(ssl.ca[0], /^-----BEGIN CERTIFICATE-----/);
    assert.match(ssl.cert, /^-----BEGIN CERTIFICATE-----/);
    assert.match(ssl.key, /^-----BEGIN (EC )?PRIVATE KEY-----/);
    assert.equal(ssl.rejectUnauthorized, true);
    assert.deepEqual(config.sasl, { mechanism: 'scram-sha-512', username: 'cdc', password: 's3cret' });
    assert.equal(kafkaConfigOf(parse({ ssl: true })).ssl, true, 'ssl: true trusts the system CAs');
    assert.equal(kafkaConfigOf(parse({})).ssl, undefined, 'no ssl unless asked');
  });

  it('an unreadable CA file is a clear config error naming the key and the file', () => {
    assert.throws(() => kafkaConfigOf(parse({ ssl: { ca: '/nonexistent/ca.pem' } })), /log\.ssl\.ca: cannot read \/nonexistent\/ca\.pem \(ENOENT\)/);
  });

  it('kafkajs does the TLS handshake with the CA and client certificate, then starts SASL (which the mock does not implement)', async () => {
    const before = proxy.clients.length;
    const log = createLog(parse({
      ssl: { ca: ca.caFile, cert: client.certFile, key: client.keyFile },
      sasl: { mechanism: 'plain', username: 'alice', password: 'wonderland' },
    }), { serviceName: 'shop', dataDir: os.tmpdir(), tables: [] });
    logs.push(log);
    const failure = (await log.open().then(() => null, (error: unknown) => error)) as { apiName?: string } | null;
    assert.ok(proxy.clients.slice(before).includes('tidewater-producer'), `client certificates seen: ${proxy.clients.join(', ')}`);
    // ApiVersions went through the TLS tunnel; kafkajs then looks up SaslHandshake, absent from the mock's API list.
    assert.match(proxy.received().toString('latin1'), /\u0000\u0012\u0000[\u0000-\u0003].*tidewater/s, 'an ApiVersions request from our client id, over TLS');
    assert.equal(failure?.apiName, 'SaslHandshake', 'the client went on to SASL authentication');
  });

  it('a broker certificate from another CA fails with the broker and the CA file named', async () => {
    const other = makeCa('another CA');
    const log = createLog(parse({ ssl: { ca: other.caFile } }), { serviceName: 'shop', dataDir: os.tmpdir(), tables: [] });
    logs.push(log);
    await assert.rejects(log.open(), (error: Error) => {
      assert.match(error.message, new RegExp(`kafka log: the TLS certificate of 127\\.0\\.0\\.1:${proxy.port} is not signed by the CA file ${other.caFile.replace(/[.]/g, '\\.')}`));
      return true;
    });
  });

  it('on a real cluster (KAFKA_BROKERS, KAFKA_SSL_CA, KAFKA_SASL_*): appends and reads back over TLS/SASL', async function () {
    const brokers = process.env.KAFKA_BROKERS;
    if (!brokers) {
      console.log('    skipped: set KAFKA_BROKERS (and KAFKA_SSL_CA, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD) to run against a real cluster');
      this.skip();
    }
    const topic = `tidewater-tls-test-${process.pid}-${Date.now()}`;
    const mechanism = process.env.KAFKA_SASL_MECHANISM;
    const config = logConfig.parse({
      type: 'kafka', brokers: brokers!.split(','), partitions: 2, topic, createTopics: { config: { 'retention.ms': 3600000 } },
      ...(process.env.KAFKA_SSL_CA ? { ssl: { ca: process.env.KAFKA_SSL_CA } } : {}),
      ...(mechanism ? { sasl: { mechanism, username: process.env.KAFKA_SASL_USERNAME, password: process.env.KAFKA_SASL_PASSWORD ?? '' } } : {}),
    }) as KafkaLogConfig;
    const log = createLog(config, { serviceName: 'shop', dataDir: os.tmpdir(), tables: [] });
    logs.push(log);
    await log.open();
    const events = Array.from({ length: 20 }, (_, id) => makeEvent({ key: { id }, version: makeVersion(BigInt(id + 1), 1) }));
    await log.append(events);
    const read = (await consumeUntilCaughtUp(log, 'tls-reader')).flat();
    assert.deepEqual(read.map((r) => r.event.key.id).sort((a, b) => Number(a) - Number(b)), events.map((e) => e.key.id));
  });
});
