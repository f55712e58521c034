import { Client } from 'pg';
import { Logger } from '../../core/runtime/logger';

export interface CapturedTable {
  schema: string;
  table: string;
}

/** What must hold before streaming: logical WAL, capturable tables, our publication and slot. */
export async function ensureReplicationSetup(
  client: Client,
  options: { sourceName: string; tables: string[]; publication: string; slot: string; logger: Logger },
): Promise<{ slotCreated: boolean }> {
  const { rows: walRows } = await client.query<{ wal_level: string }>('SHOW wal_level');
  if (walRows[0].wal_level !== 'logical') {
    throw new Error(
      `source ${options.sourceName}: wal_level is "${walRows[0].wal_level}", logical replication needs "logical": ` +
        `set wal_level = logical in postgresql.conf and restart Postgres`,
    );
  }
  const tables = options.tables.map(splitTableName);
  await checkTablesCapturable(client, options.sourceName, tables);
  await ensurePublication(client, options.publication, tables, options.logger);
  const slotCreated = await ensureSlot(client, options.slot, options.logger);
  return { slotCreated };
}

export function splitTableName(name: string): CapturedTable {
  const dot = name.indexOf('.');
  return { schema: name.slice(0, dot), table: name.slice(dot + 1) };
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function quoteTable(t: CapturedTable): string {
  return `${quoteIdent(t.schema)}.${quoteIdent(t.table)}`;
}

async function checkTablesCapturable(client: Client, sourceName: string, tables: CapturedTable[]): Promise<void> {
  for (const t of tables) {
    const { rows } = await client.query<{ relreplident: string; has_pk: boolean }>(
      `SELECT c.relreplident,
              EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_pk
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
      [t.schema, t.table],
    );
    if (rows.length === 0) {
      throw new Error(`source ${sourceName}: table ${t.schema}.${t.table} does not exist (check "tables" in the config, or create it first)`);
    }
    const { relreplident, has_pk } = rows[0];
    const keyless = relreplident === 'n' || (relreplident === 'd' && !has_pk);
    if (keyless) {
      throw new Error(
        `source ${sourceName}: table ${t.schema}.${t.table} has no primary key or replica identity, so its updates and deletes ` +
          `cannot be told apart: add a primary key, or run ALTER TABLE ${quoteTable(t)} REPLICA IDENTITY FULL`,
      );
    }
  }
}

async function ensurePublication(client: Client, publication: string, tables: CapturedTable[], logger: Logger): Promise<void> {
  const { rows } = await client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [publication]);
  const tableList = tables.map(quoteTable).join(', ');
  if (rows.length === 0) {
    await client.query(`CREATE PUBLICATION ${quoteIdent(publication)} FOR TABLE ${tableList}`);
    logger.info('created publication', { publication, tables: tables.map((t) => `${t.schema}.${t.table}`) });
    return;
  }
  const { rows: current } = await client.query<{ schemaname: string; tablename: string }>(
    'SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1',
    [publication],
  );
  const want = new Set(tables.map((t) => `${t.schema}.${t.table}`));
  const have = new Set(current.map((r) => `${r.schemaname}.${r.tablename}`));
  if (want.size !== have.size || [...want].some((t) => !have.has(t))) {
    await client.query(`ALTER PUBLICATION ${quoteIdent(publication)} SET TABLE ${tableList}`);
    logger.info('altered publication to match the configured tables', { publication, tables: [...want] });
  }
}

async function ensureSlot(client: Client, slot: string, logger: Logger): Promise<boolean> {
  const { rows } = await client.query<{ plugin: string }>('SELECT plugin FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  if (rows.length > 0) {
    if (rows[0].plugin !== 'pgoutput') {
      throw new Error(`replication slot ${slot} exists with plugin "${rows[0].plugin}", expected "pgoutput": drop it (SELECT pg_drop_replication_slot('${slot}')) or configure another slot name`);
    }
    return false;
  }
  const { rows: created } = await client.query<{ lsn: string }>(
    `SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')`,
    [slot],
  );
  logger.info('created replication slot', { slot, lsn: created[0].lsn });
  return true;
}
