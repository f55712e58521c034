import { Client } from '@elastic/elasticsearch';
import { describeTlsFailure, pemSource, readPem, TlsPeer } from '../../core/net/tls';
import { ElasticsearchSinkConfig } from './config';

export interface EsReply<T = Record<string, unknown>> {
  status: number;
  body: T;
}

/** Every status the sink decides about itself (the transport would otherwise throw on them). */
const HANDLED_STATUSES = [400, 401, 403, 404, 409, 413, 429, 500, 502, 503, 504];

/** A thin REST client: the sink sees ES's status codes and error bodies, and does its own retries. */
export class EsHttp {
  /** Made on first use and again after close(): a sink restarted by its supervisor reopens the same EsHttp, and a closed Client answers only "There are no living connections". */
  private current: Client | null = null;

  constructor(private readonly config: ElasticsearchSinkConfig) {
    const url = new URL(config.node);
    this.peer = { who: `elasticsearch sink ${config.name}`, host: url.hostname, port: url.port || 443, caFile: pemSource(config.tls?.ca), caSetting: 'tls.ca (or caFingerprint)' };
  }

  private readonly peer: TlsPeer;

  get client(): Client {
    if (!this.current) {
      const { config } = this;
      const auth = config.apiKey ? { apiKey: config.apiKey } : config.username ? { username: config.username, password: config.password ?? '' } : undefined;
      this.current = new Client({ node: config.node, auth, maxRetries: 0, requestTimeout: config.requestTimeoutMs, ...esTlsOptions(config) });
    }
    return this.current;
  }

  async request<T = Record<string, unknown>>(method: string, path: string, body?: unknown, querystring?: Record<string, string>): Promise<EsReply<T>> {
    const isNdjson = typeof body === 'string' || Buffer.isBuffer(body);
    const result = await this.client.transport.request(
      { method, path, querystring, ...(isNdjson ? { bulkBody: body } : body === undefined ? {} : { body: body as Record<string, unknown> }) },
      { ignore: HANDLED_STATUSES, meta: true },
    ).catch((error: unknown) => {
      throw describeTlsFailure(error, this.peer) ?? error;
    });
    return { status: result.statusCode ?? 0, body: (result.body ?? {}) as T };
  }

  async close(): Promise<void> {
    const closing = this.current;
    this.current = null;
    await closing?.close();
  }
}

/** `type: reason` of an ES error body, for messages and dead letters. */
export function describeEsError(body: unknown): string {
  const error = (body as { error?: unknown })?.error;
  if (typeof error === 'string') return error;
  const { type, reason, caused_by: cause } = (error ?? {}) as { type?: string; reason?: string; caused_by?: { type?: string; reason?: string } };
  const base = `${type ?? 'error'}: ${reason ?? JSON.stringify(body)}`;
  return cause?.reason ? `${base} (caused by ${cause.type}: ${cause.reason})` : base;
}

/** The client's TLS options: a private CA and client certificate (tls), or the CA's fingerprint (caFingerprint). */
function esTlsOptions(config: ElasticsearchSinkConfig): { tls?: Record<string, unknown>; caFingerprint?: string } {
  const options: { tls?: Record<string, unknown>; caFingerprint?: string } = {};
  if (config.tls) {
    const { ca, cert, key, servername } = config.tls;
    options.tls = {
      ...(ca ? { ca: readPem(ca, 'tls.ca') } : {}),
      ...(cert ? { cert: readPem(cert, 'tls.cert') } : {}),
      ...(key ? { key: readPem(key, 'tls.key') } : {}),
      ...(servername ? { servername } : {}),
    };
  }
  if (config.caFingerprint) {
    options.caFingerprint = config.caFingerprint;
    // Pinning replaces chain validation when no CA file is given (as Elasticsearch documents for its self-signed setup CA).
    if (!config.tls?.ca) options.tls = { ...options.tls, rejectUnauthorized: false };
  }
  return options;
}
