import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../core/runtime/logger';
import { elasticsearchSinkConfig } from '../../sinks/elasticsearch/config';
import { ElasticsearchSink } from '../../sinks/elasticsearch/es-sink';
import { DeadLetterStore } from '../../sinks/shared/dead-letters';
import { EsServer, startEsServer } from '../support/es-server';
import { makeEvent } from '../support/events';
import { asRecords } from '../support/sink-history';
import { makeCa, startTlsProxy, TestCa, TlsProxy } from '../support/tls-ca';

const quietLogger = createLogger('test', () => undefined);

/**
 * The Elasticsearch sink over https: the in-repo ES semantics server behind a
 * TLS-terminating proxy with a certificate of a CA made here (and, for mutual
 * TLS, a proxy that requires a client certificate of that CA).
 */
describe('TLS: Elasticsearch sink (tls.ca, client certificate, caFingerprint, apiKey)', function () {
  this.timeout(60_000);
  let ca: TestCa;
  let otherCa: TestCa;
  let es: EsServer;
  let proxy: TlsProxy;
  let mutual: TlsProxy;
  let dataDir: string;
  let client: { certFile: string; keyFile: string };
  const sinks: ElasticsearchSink[] = [];
  let n = 0;

  before(async () => {
    ca = makeCa();
    otherCa = makeCa('another CA');
    const server = ca.issue('es');
    client = ca.issue('es-client', { client: true, commonName: 'tidewater' });
    es = await startEsServer();
    const target = Number(new URL(es.url).port);
    // Like Elasticsearch, send the CA along with the certificate (caFingerprint pins it).
    proxy = await startTlsProxy({ targetPort: target, ...server, certFile: server.chainFile });
    mutual = await startTlsProxy({ targetPort: target, ...server, caFile: ca.caFile, requireClientCert: true });
    dataDir = mkdtempSync(join(tmpdir(), 'tidewater-es-tls-'));
  });
  after(async () => {
    for (const sink of sinks) await sink.close().catch(() => undefined);
    await proxy?.stop();
    await mutual?.stop();
    await es?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function writeThrough(port: number, extra: Record<string, unknown>): Promise<string> {
    const prefix = `tls${++n}-`;
    const config = elasticsearchSinkConfig.parse({ name: 'search', type: 'elasticsearch', node: `https://127.0.0.1:${port}`, indexPrefix: prefix, ...extra });
    const sink = new ElasticsearchSink(config, quietLogger, new DeadLetterStore(dataDir, `search-${n}`));
    sinks.push(sink);
    await sink.open();
    await sink.write(asRecords([makeEvent({ key: { id: 1 }, after: { id: 1, name: 'over tls' } }), makeEvent({ key: { id: 2 } })]));
    await sink.flush();
    return prefix;
  }

  it('tls.ca: writes documents over https, trusting only the CA file', async () => {
    const prefix = await writeThrough(proxy.port, { tls: { ca: ca.caFile } });
    assert.deepEqual(Object.fromEntries(es.documents(`${prefix}public.items`)), { 1: { id: 1, name: 'over tls' }, 2: { id: 2 } });
  });

  it('mutual TLS: the client certificate reaches the server, and apiKey is sent as the Authorization header', async () => {
    const before = mutual.clients.length;
    const prefix = await writeThrough(mutual.port, { tls: { ca: ca.caFile, cert: client.certFile, key: client.keyFile }, apiKey: 'aWQ6c2VjcmV0' });
    assert.equal(es.documents(`${prefix}public.items`).size, 2);
    assert.ok(mutual.clients.slice(before).every((cn) => cn === 'tidewater') && mutual.clients.length > before, `client certificate CNs: ${mutual.clients.join(',')}`);
    assert.ok(mutual.firstBytes.some((head) => /\r\nauthorization: ApiKey aWQ6c2VjcmV0\r\n/i.test(head)), 'the API key header was sent');
  });

  it('caFingerprint: trusts the server whose chain has that CA, refuses another with a clear error', async () => {
    const fingerprint = (file: string) => execFileSync('openssl', ['x509', '-noout', '-fingerprint', '-sha256', '-in', file], { encoding: 'utf8' }).trim().split('=')[1];
    const prefix = await writeThrough(proxy.port, { caFingerprint: fingerprint(ca.caFile) });
    assert.equal(es.documents(`${prefix}public.items`).size, 2);
    await assert.rejects(writeThrough(proxy.port, { caFingerprint: fingerprint(otherCa.caFile) }), /elasticsearch sink search: no certificate in the TLS chain of 127\.0\.0\.1:\d+ has the configured CA fingerprint.*check caFingerprint/);
  });

  it('a certificate from another CA: the error names the host and the CA file', async () => {
    await assert.rejects(writeThrough(proxy.port, { tls: { ca: otherCa.caFile } }), (error: Error) => {
      assert.match(error.message, new RegExp(`elasticsearch sink search: the TLS certificate of 127\\.0\\.0\\.1:${proxy.port} is not signed by the CA file ${otherCa.caFile.replace(/[.]/g, '\\.')}`));
      return true;
    });
  });

  it('a certificate for another host name: the error says the name does not match', async () => {
    const wrongName = await startTlsProxy({ targetPort: Number(new URL(es.url).port), ...ca.issue('elsewhere', { names: ['db.example.invalid'] }) });
    try {
      await assert.rejects(writeThrough(wrongName.port, { tls: { ca: ca.caFile } }), /the TLS certificate of 127\.0\.0\.1:\d+ does not name the host "127\.0\.0\.1"/);
    } finally {
      await wrongName.stop();
    }
  });
});
