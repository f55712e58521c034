// One reconnecting SQL connection per source kind, for the load generator and
// the fault actions: a restart or a killed backend costs one failed statement,
// never the generator.
import { Connection, createConnection } from 'mysql2/promise';
import { Client } from 'pg';
import { SourceKind } from './schema';

export interface SqlClient {
  /** Runs the statements in one transaction; rejects on any failure (the connection is then dropped). */
  transaction(statements: string[]): Promise<void>;
  query(text: string): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

/** `url` is a postgres:// URL of the database, or for MariaDB mysql://root@127.0.0.1:PORT/ plus `database`. */
export function sqlClient(kind: SourceKind, url: string, database?: string): SqlClient {
  return kind === 'postgres' ? new PgClient(url) : new MariaClient(url, database!);
}

class PgClient implements SqlClient {
  private client: Promise<Client> | null = null;
  constructor(private readonly url: string) {}

  private connect(): Promise<Client> {
    this.client ??= (async () => {
      const client = new Client({ connectionString: this.url, connectionTimeoutMillis: 5000, application_name: 'fault-load' });
      client.on('error', () => (this.client = null)); // a restart or pg_terminate_backend: reconnect next time
      await client.connect();
      return client;
    })().catch((error) => {
      this.client = null;
      throw error;
    });
    return this.client;
  }

  async query(text: string): Promise<Record<string, unknown>[]> {
    const client = await this.connect();
    try {
      return (await client.query(text)).rows;
    } catch (error) {
      this.drop(client);
      throw error;
    }
  }

  async transaction(statements: string[]): Promise<void> {
    await this.query(statements.length === 1 ? statements[0] : `BEGIN; ${statements.join('; ')}; COMMIT`);
  }

  private drop(client: Client): void {
    // A failed statement inside BEGIN leaves the transaction aborted: start over on a fresh connection.
    this.client = null;
    void client.end().catch(() => undefined);
  }

  async close(): Promise<void> {
    const client = await this.client?.catch(() => null);
    this.client = null;
    await client?.end().catch(() => undefined);
  }
}

class MariaClient implements SqlClient {
  private connection: Promise<Connection> | null = null;
  constructor(private readonly url: string, private readonly database: string) {}

  private connect(): Promise<Connection> {
    this.connection ??= (async () => {
      const u = new URL(this.url);
      const connection = await createConnection({
        host: u.hostname, port: Number(u.port), user: decodeURIComponent(u.username) || 'root', database: this.database,
        multipleStatements: true, charset: 'utf8mb4', timezone: 'Z', connectTimeout: 5000, supportBigNumbers: true, bigNumberStrings: true,
      });
      connection.on('error', () => (this.connection = null));
      return connection;
    })().catch((error) => {
      this.connection = null;
      throw error;
    });
    return this.connection;
  }

  async query(text: string): Promise<Record<string, unknown>[]> {
    const connection = await this.connect();
    try {
      const [result] = await connection.query(text);
      if (!Array.isArray(result)) return [];
      const sets = (result as unknown[]).filter(Array.isArray);
      return (sets.length > 0 ? sets[sets.length - 1] : result) as Record<string, unknown>[];
    } catch (error) {
      this.connection = null;
      void connection.end().catch(() => undefined);
      throw error;
    }
  }

  async transaction(statements: string[]): Promise<void> {
    await this.query(statements.length === 1 ? statements[0] : `START TRANSACTION; ${statements.join('; ')}; COMMIT`);
  }

  async close(): Promise<void> {
    const connection = await this.connection?.catch(() => null);
    this.connection = null;
    await connection?.end().catch(() => undefined);
  }
}
