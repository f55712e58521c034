import { Client } from 'pg';
import { LogicalReplicationService, Pgoutput, PgoutputPlugin } from 'pg-logical-replication';
import { Logger } from '../../core/runtime/logger';
import { Source, SourceStreamOptions } from '../source';
import { defaultObjectName, PostgresSourceConfig } from './config';
import { formatLsn, Lsn, parseLsn, ZERO_LSN } from './lsn';
import { ensureReplicationSetup, splitTableName } from './slot';
import { TransactionAssembler } from './transaction-assembler';

/** Session settings that fix the text forms types.ts parses. */
const SESSION_OPTIONS = '-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=iso_8601 -c extra_float_digits=3';

/**
 * pgoutput plugin that keeps every column value as the raw text Postgres sent:
 * the library's default parsers turn timestamps into JS Dates (losing
 * microseconds) and bigints into Numbers.
 */
class RawTextPgoutputPlugin extends PgoutputPlugin {
  override parse(buffer: Buffer): Pgoutput.Message {
    const message = super.parse(buffer) as Pgoutput.Message;
    if (message.tag === 'relation') for (const column of message.columns) column.parser = (raw: unknown) => raw;
    return message;
  }
}

/**
 * Streams a Postgres database's changes through a logical replication slot.
 *
 * Traps of pg-logical-replication avoided here (DESIGN §7): automatic
 * acknowledgement is off (it would confirm LSNs before they are durable), the
 * periodic status timer is off (it confirms the last *received* LSN), keepalives
 * are answered with the last *durable* LSN, and every connection attempt uses a
 * fresh instance started from the saved LSN.
 */
export class PostgresSource implements Source {
  readonly name: string;
  private readonly slot: string;
  private readonly publication: string;
  private service: LogicalReplicationService | null = null;
  private lastAcknowledged: Lsn = ZERO_LSN;

  constructor(private readonly config: PostgresSourceConfig, private readonly logger: Logger) {
    this.name = config.name;
    this.slot = config.slot ?? defaultObjectName(config.name);
    this.publication = config.publication ?? defaultObjectName(config.name);
  }

  async stream({ from, emit, signal, onStreaming }: SourceStreamOptions): Promise<void> {
    const { db, primaryKeys } = await this.prepare();
    if (signal.aborted) return;
    const startLsn = from ? parseLsn(from) : ZERO_LSN;
    this.lastAcknowledged = startLsn;
    const assembler = new TransactionAssembler({ sourceName: this.name, db, primaryKeys, maxBatchEvents: 1000 }, startLsn);
    const service = new LogicalReplicationService(
      { connectionString: this.config.url, options: SESSION_OPTIONS } as never,
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } },
    );
    this.service = service;
    service.on('data', async (lsn: string, message: Pgoutput.Message) => {
      const batch = assembler.onMessage(lsn, message);
      if (batch) await emit(batch);
    });
    service.on('heartbeat', async (_lsn: string, _timestamp: number, shouldRespond: boolean) => {
      if (shouldRespond) await this.sendFeedback();
    });

    await new Promise<void>((resolve, reject) => {
      const stop = () => void service.stop().then(() => resolve(), reject);
      signal.addEventListener('abort', stop, { once: true });
      service.on('error', (error: Error) => {
        signal.removeEventListener('abort', stop);
        void service.stop().finally(() => reject(this.describe(error)));
      });
      service.on('start', () => {
        this.logger.info('streaming', { slot: this.slot, from: formatLsn(startLsn) });
        onStreaming();
      });
      service.subscribe(new RawTextPgoutputPlugin({ protoVersion: 1, publicationNames: [this.publication] }), this.slot, formatLsn(startLsn)).then(
        () => (signal.aborted ? resolve() : reject(new Error(`source ${this.name}: the replication stream from slot ${this.slot} ended unexpectedly`))),
        (error: Error) => (signal.aborted ? resolve() : reject(this.describe(error))),
      );
    });
  }

  async acknowledge(checkpoint: string): Promise<void> {
    const lsn = parseLsn(checkpoint);
    if (lsn <= this.lastAcknowledged) return;
    this.lastAcknowledged = lsn;
    await this.sendFeedback();
  }

  async close(): Promise<void> {
    await this.service?.destroy();
    this.service = null;
  }

  /** Reports the last durable LSN as written and flushed: the slot may advance to it. */
  private async sendFeedback(): Promise<void> {
    if (!this.service || this.lastAcknowledged === ZERO_LSN) return;
    // The library reports lsn + 1; we want the commit end LSN itself, so that a
    // transaction whose commit record starts exactly there is not skipped.
    await this.service.acknowledge(formatLsn(this.lastAcknowledged - 1n));
  }

  /** Checks the server, creates the publication and slot when missing, reads key columns. */
  private async prepare(): Promise<{ db: string; primaryKeys: Map<string, string[]> }> {
    const client = new Client({ connectionString: this.config.url });
    try {
      await client.connect();
      await ensureReplicationSetup(client, {
        sourceName: this.name,
        tables: this.config.tables,
        publication: this.publication,
        slot: this.slot,
        logger: this.logger,
      });
      const { rows } = await client.query<{ db: string }>('SELECT current_database() AS db');
      const primaryKeys = new Map<string, string[]>();
      for (const name of this.config.tables) {
        const key = await readPrimaryKey(client, name);
        if (key.length > 0) primaryKeys.set(name, key);
      }
      return { db: rows[0].db, primaryKeys };
    } catch (error) {
      throw this.describe(error as Error);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private describe(error: Error): Error {
    if (error.message.startsWith(`source ${this.name}`)) return error;
    const described = new Error(`source ${this.name} (postgres, slot ${this.slot}): ${error.message}`);
    described.cause = error;
    return described;
  }
}

async function readPrimaryKey(client: Client, tableName: string): Promise<string[]> {
  const { schema, table } = splitTableName(tableName);
  const { rows } = await client.query<{ attname: string }>(
    `SELECT a.attname
       FROM pg_index i
       JOIN pg_class c ON c.oid = i.indrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
      WHERE n.nspname = $1 AND c.relname = $2 AND i.indisprimary
      ORDER BY array_position(i.indkey::int2[], a.attnum)`,
    [schema, table],
  );
  return rows.map((r) => r.attname);
}
