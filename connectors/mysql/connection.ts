import { Connection, createConnection } from 'mysql2/promise';
import { MysqlConnectionOptions } from './binlog-decoder';

/** mysql://user:password@host:port/ → connection options (the database part is ignored). */
export function parseMysqlUrl(url: string): MysqlConnectionOptions {
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
  return options;
}

/**
 * A query connection whose results use the decoder's raw value forms
 * (types.ts): exact strings for BIGINT and DECIMAL, temporal values as text
 * in UTC, JSON as text, binary as Buffers.
 */
export async function openConnection(options: MysqlConnectionOptions, onLost: (error: Error) => void = () => undefined): Promise<Connection> {
  const connection = await createConnection({
    ...options,
    charset: 'utf8mb4',
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    jsonStrings: true,
    timezone: 'Z',
    connectTimeout: 10_000,
    enableKeepAlive: true,
  });
  // Without a listener, a connection lost while idle (server restart, KILL) would crash the process;
  // by default the next query fails and reports it.
  connection.on('error', onLost);
  try {
    await connection.query(`SET time_zone = '+00:00'`);
  } catch (error) {
    connection.destroy();
    throw error;
  }
  return connection;
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
