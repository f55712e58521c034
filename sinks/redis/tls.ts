import type { ConnectionOptions } from 'node:tls';
import { pemSource, readPem, TlsPeer } from '../../core/net/tls';
import { RedisSinkConfig } from './config';

/**
 * ioredis's `tls` option from a sink's config: a rediss:// URL alone trusts
 * the system's CAs; `tls: { ca, cert, key }` (PEM file paths or PEM text)
 * adds a private CA and a client certificate.
 */
export function redisTlsOptions(config: Pick<RedisSinkConfig, 'url' | 'tls'>): { tls?: ConnectionOptions } {
  if (!config.url.startsWith('rediss://')) return {};
  const { ca, cert, key, servername } = config.tls ?? {};
  return {
    tls: {
      ...(ca ? { ca: [readPem(ca, 'tls.ca')] } : {}),
      ...(cert ? { cert: readPem(cert, 'tls.cert') } : {}),
      ...(key ? { key: readPem(key, 'tls.key') } : {}),
      ...(servername ? { servername } : {}),
    },
  };
}

/** Who and what a certificate failure of this sink names. */
export function redisTlsPeer(config: Pick<RedisSinkConfig, 'name' | 'url' | 'tls'>): TlsPeer {
  const url = new URL(config.url);
  return { who: `redis sink ${config.name}`, host: url.hostname, port: url.port || 6379, caFile: pemSource(config.tls?.ca), caSetting: 'tls.ca' };
}
