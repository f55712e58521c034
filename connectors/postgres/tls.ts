import { TlsPeer } from '../../core/net/tls';

/**
 * Who and what a certificate failure names for a postgres:// URL. TLS itself
 * comes from the URL, as libpq reads it (sslmode=verify-full, sslrootcert,
 * sslcert, sslkey): node-postgres and pg-logical-replication both take it from
 * the connection string, so every connection of the source uses it.
 */
export function pgTlsPeer(url: string, who: string): TlsPeer {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  return {
    who,
    host: parsed?.hostname || parsed?.searchParams.get('host') || 'localhost',
    port: parsed?.port || 5432,
    caFile: parsed?.searchParams.get('sslrootcert') ?? undefined,
    caSetting: 'sslrootcert in the URL',
  };
}
