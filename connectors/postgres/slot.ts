import { Client } from 'pg';
import { Logger } from '../../core/runtime/logger';
import { Lsn, parseLsn } from './lsn';

export interface CapturedTable {
  schema: string;
  table: string;
}

export const tableName = (t: CapturedTable): string => `${t.schema}.${t.table}`;

export function splitTableName(name: string): CapturedTable {
  const dot = name.indexOf('.');
  return { schema: name.slice(0, dot), table: name.slice(dot + 1) };
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteTable(t: CapturedTable): string {
  return `${quoteIdent(t.schema)}.${quoteIdent(t.table)}`;
}

/** What must hold before streaming: logical WAL, the right grants, capturable tables, our publication. */
export async function prepareServer(
  client: Client,
  options: {
    sourceName: string;
    tables: string[];
    publication: string;
    logger: Logger;
    /** Told the tables added to an existing publication: they joined the capture, and their existing rows must be read. */
    onJoined?: (tables: CapturedTable[]) => void;
  },
): Promise<CapturedTable[]> {
  const prefix = `source ${options.sourceName}`;
  const { rows: walRows } = await client.query<{ wal_level: string }>('SHOW wal_level');
  if (walRows[0].wal_level !== 'logical') {
    throw new Error(`${prefix}: wal_level is "${walRows[0].wal_level}", logical replication needs "logical": set wal_level = logical in postgresql.conf and restart Postgres`);
  }
  const { rows: roles } = await client.query<{ role: string; allowed: boolean }>(
    'SELECT current_user AS role, rolreplication OR rolsuper AS allowed FROM pg_roles WHERE rolname = current_user',
  );
  if (!roles[0].allowed) {
    throw new Error(`${prefix}: role ${roles[0].role} may not replicate: as a superuser run ALTER ROLE ${quoteIdent(roles[0].role)} REPLICATION`);
  }
  const tables = await resolveTables(client, prefix, options.tables);
  for (const t of tables) await checkTableCapturable(client, prefix, roles[0].role, t);
  const joined = await ensurePublication(client, prefix, options.publication, tables, options.logger);
  if (joined.length > 0) options.onJoined?.(joined);
  return tables;
}

/** Expands `schema.*` and checks that every named table exists. Partitions are captured through their root. */
export async function resolveTables(client: Client, prefix: string, patterns: string[]): Promise<CapturedTable[]> {
  const found = new Map<string, CapturedTable>();
  for (const pattern of patterns) {
    const { schema, table } = splitTableName(pattern);
    const { rows } = await client.query<{ schema: string; table: string }>(
      `SELECT n.nspname AS schema, c.relname AS table
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND ($2 = '*' OR c.relname = $2) AND c.relkind IN ('r', 'p') AND NOT c.relispartition
        ORDER BY c.relname`,
      [schema, table],
    );
    if (rows.length === 0) {
      throw new Error(
        table === '*'
          ? `${prefix}: schema ${schema} has no tables (check "tables" in the config)`
          : `${prefix}: table ${pattern} does not exist, or is a partition (capture its partitioned root instead); check "tables" in the config`,
      );
    }
    for (const r of rows) found.set(`${r.schema}.${r.table}`, r);
  }
  return [...found.values()];
}

export async function checkTableCapturable(client: Client, prefix: string, role: string, t: CapturedTable): Promise<void> {
  const { rows } = await client.query<{ relreplident: string; has_pk: boolean; can_select: boolean }>(
    `SELECT c.relreplident,
            EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_pk,
            has_table_privilege(c.oid, 'SELECT') AS can_select
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2`,
    [t.schema, t.table],
  );
  const { relreplident, has_pk, can_select } = rows[0];
  if (!can_select) {
    throw new Error(`${prefix}: role ${role} cannot read ${tableName(t)}: run GRANT SELECT ON ${quoteTable(t)} TO ${quoteIdent(role)}`);
  }
  if (relreplident === 'n' || (relreplident === 'd' && !has_pk)) {
    throw new Error(
      `${prefix}: table ${tableName(t)} has no primary key or replica identity, so its updates and deletes ` +
        `cannot be told apart: add a primary key, or run ALTER TABLE ${quoteTable(t)} REPLICA IDENTITY FULL`,
    );
  }
}

/** Creates or aligns the publication; returns the tables it added to one that existed. */
async function ensurePublication(client: Client, prefix: string, publication: string, tables: CapturedTable[], logger: Logger): Promise<CapturedTable[]> {
  const tableList = tables.map(quoteTable).join(', ');
  const { rows } = await client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [publication]);
  try {
    if (rows.length === 0) {
      await client.query(`CREATE PUBLICATION ${quoteIdent(publication)} FOR TABLE ${tableList} WITH (publish_via_partition_root = true)`);
      logger.info('created publication', { publication, tables: tables.map(tableName) });
      return [];
    }
    const { rows: current } = await client.query<{ schemaname: string; tablename: string }>(
      'SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1',
      [publication],
    );
    const want = new Set(tables.map(tableName));
    const have = new Set(current.map((r) => `${r.schemaname}.${r.tablename}`));
    if (want.size !== have.size || [...want].some((t) => !have.has(t))) {
      await client.query(`ALTER PUBLICATION ${quoteIdent(publication)} SET TABLE ${tableList}`);
      await client.query(`ALTER PUBLICATION ${quoteIdent(publication)} SET (publish_via_partition_root = true)`);
      logger.info('altered publication to match the configured tables', { publication, tables: [...want] });
    }
    return tables.filter((t) => !have.has(tableName(t)));
  } catch (error) {
    if ((error as { code?: string }).code === '42501') {
      throw new Error(
        `${prefix}: not allowed to create or alter publication ${publication} (${(error as Error).message}): ` +
          `connect as the tables' owner or a superuser, or have one run CREATE PUBLICATION ${quoteIdent(publication)} FOR TABLE ${tableList} WITH (publish_via_partition_root = true)`,
      );
    }
    throw error;
  }
}

/** The slot's plugin, or null when it does not exist. */
export async function slotPlugin(client: Client, slot: string): Promise<string | null> {
  const { rows } = await client.query<{ plugin: string }>('SELECT plugin FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  return rows[0]?.plugin ?? null;
}

/** pg_replication_slots.wal_status of the slot ('reserved', 'extended', 'unreserved', 'lost'), or null when it does not exist. */
export async function slotWalStatus(client: Client, slot: string): Promise<string | null> {
  const { rows } = await client.query<{ wal_status: string | null }>('SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  return rows.length === 0 ? null : (rows[0].wal_status ?? '');
}

/**
 * What an operator must read when the server invalidated the slot: the WAL it
 * held passed max_slot_wal_keep_size, so changes after `savedLsn` are gone.
 */
export async function describeLostSlot(client: Client, slot: string, savedLsn: string): Promise<string> {
  const { rows } = await client.query<{ setting: string }>(`SELECT current_setting('max_slot_wal_keep_size') AS setting`);
  // -1 (unlimited) now means it was raised since: say so rather than name a limit that cannot have been passed.
  const setting = rows[0].setting === '-1' ? '-1 now, unlimited: it was lower when the slot was lost' : rows[0].setting;
  return (
    `replication slot ${slot} was invalidated by the server (pg_replication_slots.wal_status = 'lost'): the WAL it held ` +
    `grew past max_slot_wal_keep_size (${setting}) while the source was stopped or behind, ` +
    `so the changes after ${savedLsn} can no longer be streamed`
  );
}

/** The slot's confirmed_flush_lsn, or null when it does not exist (or has none yet). */
export async function slotConfirmedLsn(client: Client, slot: string): Promise<Lsn | null> {
  const { rows } = await client.query<{ lsn: string | null }>('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  return rows[0]?.lsn ? parseLsn(rows[0].lsn) : null;
}

export async function dropSlot(client: Client, slot: string): Promise<void> {
  await client.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot]);
}

/** A slot created without a snapshot: streaming starts at its consistent point. */
export async function createSlot(client: Client, slot: string): Promise<Lsn> {
  const { rows } = await client.query<{ lsn: string }>(`SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  return parseLsn(rows[0].lsn);
}

export interface ExportedSnapshot {
  consistentPoint: Lsn;
  snapshotName: string;
  /** Ends the replication connection; the snapshot stays valid in transactions that imported it. */
  release(): Promise<void>;
}

/**
 * Creates the slot and exports the snapshot that matches its consistent point
 * exactly: rows read in that snapshot plus changes streamed from that point
 * are the table, with no gap and no overlap. The replication connection must
 * run nothing else until the snapshot is imported (docs/architecture.md §7).
 */
export async function createSlotWithSnapshot(url: string, slot: string): Promise<ExportedSnapshot> {
  const connection = new Client({ connectionString: url, replication: 'database', connectionTimeoutMillis: 10_000, keepAlive: true } as never);
  connection.on('error', () => undefined); // the snapshot readers fail and report it
  await connection.connect();
  try {
    const { rows } = await connection.query<{ consistent_point: string; snapshot_name: string }>(
      `CREATE_REPLICATION_SLOT ${quoteIdent(slot)} LOGICAL pgoutput EXPORT_SNAPSHOT`,
    );
    return {
      consistentPoint: parseLsn(rows[0].consistent_point),
      snapshotName: rows[0].snapshot_name,
      release: () => connection.end(),
    };
  } catch (error) {
    await connection.end().catch(() => undefined);
    throw error;
  }
}
