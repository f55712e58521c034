import { Connection, createConnection } from 'mysql2/promise';
import { describeTlsFailure, pemSource, readPem, TlsPeer } from '../../core/net/tls';
import { untilAborted } from '../../core/runtime/attempt';
import { MysqlConnectionOptions } from './binlog-decoder';

/** `ssl` of a MySQL source's config: PEM file paths (or PEM text) and the check to make. */
export interface MysqlSslConfig {
  ca?: string;
  cert?: string;
  key?: string;
  /** As the URL's ssl-mode; default VERIFY_IDENTITY (VERIFY_CA's check plus the host name). */
  mode?: MysqlSslMode;
}

export type MysqlSslMode = 'DISABLED' | 'REQUIRED' | 'VERIFY_CA' | 'VERIFY_IDENTITY';
const SSL_MODES: readonly string[] = ['DISABLED', 'REQUIRED', 'VERIFY_CA', 'VERIFY_IDENTITY'];

/** URL query options understood (MySQL's own URI names, with `_` accepted for `-`). */
const URL_OPTIONS: Record<string, keyof MysqlSslConfig> = { 'ssl-mode': 'mode', 'ssl-ca': 'ca', 'ssl-cert': 'cert', 'ssl-key': 'key' };

/**
 * mysql://user:password@host:port/?ssl-mode=VERIFY_IDENTITY&ssl-ca=/path/ca.pem
 * → connection options (the database part is ignored). TLS comes from the
 * URL's ssl-* options or from `ssl` (the source config's), the URL winning
 * per option; unknown query options are an error, never silently dropped.
 */
export function parseMysqlUrl(url: string, ssl?: MysqlSslConfig): MysqlConnectionOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`malformed MySQL URL (expected mysql://user:password@host:port/)`);
  }
  const options: MysqlConnectionOptions = {
    host: decodeURIComponent(parsed.hostname.replace(/^\[|\]$/g, '')) || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : 3306,
    user: decodeURIComponent(parsed.username) || 'root',
  };
  if (parsed.password) options.password = decodeURIComponent(parsed.password);
  const fromUrl: MysqlSslConfig = {};
  for (const [name, value] of parsed.searchParams) {
    const field = URL_OPTIONS[name.toLowerCase().replace(/_/g, '-')];
    if (!field) {
      throw new Error(`MySQL URL option "${name}" is not supported; the URL takes ${Object.keys(URL_OPTIONS).join(', ')} (other connection settings have their own keys in the source config)`);
    }
    if (field === 'mode') fromUrl.mode = sslMode(value);
    else fromUrl[field] = value;
  }
  const tls = { ...ssl, ...fromUrl };
  const mode = tls.mode ?? (tls.ca || tls.cert ? 'VERIFY_IDENTITY' : 'DISABLED');
  if (mode !== 'DISABLED') {
    options.ssl = {
      ...(tls.ca ? { ca: readPem(tls.ca, 'ssl-ca') } : {}),
      ...(tls.cert ? { cert: readPem(tls.cert, 'ssl-cert') } : {}),
      ...(tls.key ? { key: readPem(tls.key, 'ssl-key') } : {}),
      rejectUnauthorized: mode !== 'REQUIRED',
      verifyIdentity: mode === 'VERIFY_IDENTITY',
    };
    options.sslCaFile = pemSource(tls.ca);
  }
  return options;
}

function sslMode(value: string): MysqlSslMode {
  const mode = value.toUpperCase();
  if (SSL_MODES.includes(mode)) return mode as MysqlSslMode;
  if (mode === 'PREFERRED') {
    throw new Error(`MySQL URL: ssl-mode=PREFERRED (TLS only if the server offers it) is not supported: it gives no protection against a server that does not; use REQUIRED, VERIFY_CA or VERIFY_IDENTITY, or DISABLED`);
  }
  throw new Error(`MySQL URL: ssl-mode=${value} is not one of ${SSL_MODES.join(', ')}`);
}

/** What `who` says when a TLS certificate check against `options` fails. */
export function mysqlTlsPeer(options: MysqlConnectionOptions, who: string): TlsPeer {
  return { who, host: options.host, port: options.port, caFile: options.sslCaFile, caSetting: 'ssl-ca (URL) or ssl.ca (source config)' };
}

export interface OpenConnectionOptions {
  /** Told when the connection is lost while idle (by default the next query fails and reports it). */
  onLost?(error: Error): void;
  /**
   * The attempt the connection belongs to: when it aborts, the connection ends
   * and whatever query it has in flight fails, so no await on it outlives the
   * attempt. Opening it rejects at once; one that connects too late is closed.
   */
  signal?: AbortSignal;
  /**
   * On abort, how long a polite QUIT may take before the connection is
   * destroyed (default 1000 ms; 0 destroys it at once: a long read in flight
   * would hold the QUIT up).
   */
  quitMs?: number;
}

/**
 * A query connection whose results use the decoder's raw value forms
 * (types.ts): exact strings for BIGINT and DECIMAL, temporal values as text
 * in UTC, JSON as text, binary as Buffers.
 */
export async function openConnection(options: MysqlConnectionOptions, onLostOrOptions: ((error: Error) => void) | OpenConnectionOptions = {}): Promise<Connection> {
  const { onLost = () => undefined, signal, quitMs = 1000 } = typeof onLostOrOptions === 'function' ? { onLost: onLostOrOptions } : onLostOrOptions;
  const { sslCaFile: _caFile, ...settings } = options;
  const connecting = createConnection({
    ...settings,
    charset: 'utf8mb4',
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    jsonStrings: true,
    timezone: 'Z',
    connectTimeout: 10_000,
    enableKeepAlive: true,
  }).catch((error: unknown) => {
    throw describeTlsFailure(error, mysqlTlsPeer(options, `MySQL ${options.host}:${options.port}`)) ?? error;
  });
  // The connect timeout bounds the handshake, but an attempt that ended meanwhile does not wait for it.
  const connection = signal ? await untilAborted(connecting, signal, (late) => destroyConnection(late)) : await connecting;
  // Without a listener, a connection lost while idle (server restart, KILL) would crash the process;
  // by default the next query fails and reports it. mysql2 emits no 'error' when the loss fails a
  // query in flight (that query gets it): the socket's close tells onLost then.
  let lost = false;
  const lose = (error: Error) => {
    if (lost) return;
    lost = true;
    onLost(error);
  };
  connection.on('error', lose);
  (connection as unknown as { connection?: MysqlCore }).connection?.stream?.once('close', () => lose(new Error('Connection lost: the connection was closed')));
  if (signal) {
    const end = () => (quitMs > 0 ? void quitConnection(connection, quitMs) : destroyConnection(connection, 'the connection was closed: its attempt ended'));
    if (signal.aborted) end();
    else signal.addEventListener('abort', end, { once: true });
  }
  try {
    await connection.query(`SET time_zone = '+00:00'`);
  } catch (error) {
    destroyConnection(connection);
    throw error;
  }
  return connection;
}

/**
 * Ends a connection with a polite QUIT, destroying it (failing any query in
 * flight) if that has not finished within `withinMs`: a blackholed network
 * never answers, and a QUIT waits behind a query in flight.
 */
export async function quitConnection(connection: Connection, withinMs = 2000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([connection.end().catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, withinMs)))]);
  clearTimeout(timer);
  destroyConnection(connection);
}

/**
 * Closes a connection at once and fails whatever query it has in flight.
 * mysql2's destroy() alone leaves an in-flight query pending for good (it marks
 * the connection as closing, so the socket's close notifies no command): a
 * snapshot or resync read ended that way hung its source until a restart (the
 * fault suite's MariaDB restart mid-snapshot and mid-resync). Destroying the
 * socket with an error makes mysql2 fail every pending command with it.
 */
export function destroyConnection(connection: Connection, reason = 'the connection was closed: its attempt ended'): void {
  const core = (connection as unknown as { connection?: MysqlCore }).connection;
  // Commands in flight or queued fail now, whatever state the socket is in: when the peer had
  // just closed it, destroying it emits no error, and the close that follows is ignored once
  // destroy() marked the connection as closing (a MariaDB restart hung a snapshot read so).
  if (core && !core._fatalError && (core._command || (core._commands?.length ?? 0) > 0)) {
    core._handleFatalError?.(Object.assign(new Error(reason), { code: 'PROTOCOL_CONNECTION_LOST' }));
  }
  core?.stream?.destroy(new Error(reason));
  connection.destroy();
}

/** The mysql2 internals destroyConnection relies on (mysql2 3.x base/connection.js). */
interface MysqlCore {
  stream?: { destroy(error?: Error): void; once(event: 'close', listener: () => void): void };
  _command?: unknown;
  _commands?: { length: number };
  _fatalError?: Error | null;
  _handleFatalError?(error: Error): void;
}

/** The server's error number (ER_*), when `error` came from the server. */
export function serverErrorCode(error: unknown): number | undefined {
  const errno = (error as { errno?: unknown }).errno;
  return typeof errno === 'number' ? errno : undefined;
}

export function quoteIdent(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}

/** `db.table` → `` `db`.`table` ``. */
export function quoteTable(name: string): string {
  const dot = name.indexOf('.');
  return `${quoteIdent(name.slice(0, dot))}.${quoteIdent(name.slice(dot + 1))}`;
}

export function splitTable(name: string): { schema: string; table: string } {
  const dot = name.indexOf('.');
  return { schema: name.slice(0, dot), table: name.slice(dot + 1) };
}
