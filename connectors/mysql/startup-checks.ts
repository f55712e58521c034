import { Connection, RowDataPacket } from 'mysql2/promise';
import { BinlogPosition, fileSequence } from './binlog-position';
import { quoteTable, serverErrorCode } from './connection';
import { MariadbGtidState } from './gtid';

export interface ServerInfo {
  mariadb: boolean;
  version: string;
  /** The user as the server sees it, for GRANT hints: `'cdc'@'%'`. */
  account: string;
}

const ER_ACCESS_DENIED = new Set([1227, 1142, 1143, 1044]);
const ER_NO_SUCH_TABLE = 1146;

/** Server flavour and version, and the account we are connected as. */
export async function serverInfo(connection: Connection): Promise<ServerInfo> {
  const [rows] = await connection.query<RowDataPacket[]>('SELECT VERSION() AS version, CURRENT_USER() AS account');
  const version = String(rows[0].version);
  const [user, host] = String(rows[0].account).split('@');
  return { mariadb: /mariadb/i.test(version), version, account: `'${user}'@'${host}'` };
}

/**
 * Everything the binlog source relies on, checked before it reads anything,
 * each failure with the setting or grant that fixes it (issue: start-up checks).
 */
export async function checkServer(connection: Connection, options: { serverId: number; tables: string[]; info: ServerInfo }): Promise<void> {
  const { info } = options;
  const setting = (name: string, value: string) => `set ${name}=${value} in the server's config file, or SET GLOBAL ${name}='${value}' (sessions opened before keep the old value)`;
  const logBin = await globalVariable(connection, 'log_bin');
  if (logBin !== '1' && logBin?.toUpperCase() !== 'ON') {
    throw new Error(`binary logging is off on the server (log_bin=${logBin}): start it with --log-bin (and --binlog-format=ROW --binlog-row-image=FULL --binlog-row-metadata=FULL)`);
  }
  const format = await globalVariable(connection, 'binlog_format');
  if (format?.toUpperCase() !== 'ROW') {
    throw new Error(`binlog_format is ${format}, but the source reads row changes and needs ROW: ${setting('binlog_format', 'ROW')}`);
  }
  const image = await globalVariable(connection, 'binlog_row_image');
  if (image?.toUpperCase() !== 'FULL') {
    throw new Error(`binlog_row_image is ${image}, but the source needs whole rows before and after each change (FULL): ${setting('binlog_row_image', 'FULL')}`);
  }
  const metadata = await globalVariable(connection, 'binlog_row_metadata');
  if (metadata === undefined) {
    throw new Error(`the server (${info.version}) has no binlog_row_metadata setting: the source needs MariaDB 10.5+ or MySQL 8.0.1+ with binlog_row_metadata=FULL`);
  }
  if (metadata.toUpperCase() !== 'FULL') {
    throw new Error(
      `binlog_row_metadata is ${metadata}, but the source decodes rows with the column names and types the binlog carries (FULL), ` +
        `so a later ALTER TABLE cannot garble older events: ${setting('binlog_row_metadata', 'FULL')}`,
    );
  }
  if ((await globalVariable(connection, 'binlog_transaction_compression'))?.toUpperCase() === 'ON') {
    throw new Error(`binlog_transaction_compression is ON: compressed transactions cannot be decoded; ${setting('binlog_transaction_compression', 'OFF')}`);
  }
  if ((await globalVariable(connection, 'binlog_row_value_options'))?.toUpperCase().includes('PARTIAL_JSON')) {
    throw new Error(`binlog_row_value_options is PARTIAL_JSON: partial JSON updates cannot be decoded; ${setting('binlog_row_value_options', '')}`);
  }
  const serverId = Number(await globalVariable(connection, 'server_id'));
  if (serverId === options.serverId) {
    throw new Error(`serverId ${options.serverId} in the config is the server's own server_id: choose another number, unique among the server's replicas`);
  }
  await checkGrants(connection, options.tables, info);
}

async function checkGrants(connection: Connection, tables: string[], info: ServerInfo): Promise<void> {
  const [grants] = await connection.query<RowDataPacket[]>('SHOW GRANTS');
  const lines = grants.map((g) => String(Object.values(g)[0]).toUpperCase());
  const global = lines.filter((l) => / ON \*\.\* TO /.test(l));
  if (!global.some((l) => /ALL PRIVILEGES|REPLICATION SLAVE|REPLICATION REPLICA/.test(l))) {
    throw new Error(`the user ${info.account} may not read the binlog: GRANT REPLICATION SLAVE ON *.* TO ${info.account}`);
  }
  try {
    await connection.query('SHOW BINARY LOGS');
  } catch (error) {
    if (!ER_ACCESS_DENIED.has(serverErrorCode(error) ?? 0)) throw error;
    const privilege = info.mariadb ? 'BINLOG MONITOR' : 'REPLICATION CLIENT';
    throw new Error(`the user ${info.account} may not list the binlog files (SHOW BINARY LOGS): GRANT ${privilege} ON *.* TO ${info.account}`);
  }
  for (const table of tables.filter((t) => !t.endsWith('.*'))) {
    try {
      await connection.query(`SELECT 1 FROM ${quoteTable(table)} LIMIT 0`);
    } catch (error) {
      if (serverErrorCode(error) === ER_NO_SUCH_TABLE) throw new Error(`table ${table} does not exist (check "tables" in the config, or create it first)`);
      if (!ER_ACCESS_DENIED.has(serverErrorCode(error) ?? 0)) throw error;
      throw new Error(`the user ${info.account} may not read table ${table}: GRANT SELECT ON ${quoteTable(table)} TO ${info.account}`);
    }
  }
}

async function globalVariable(connection: Connection, name: string): Promise<string | undefined> {
  const [rows] = await connection.query<RowDataPacket[]>('SHOW GLOBAL VARIABLES LIKE ?', [name]);
  return rows.length > 0 ? String(rows[0].Value) : undefined;
}

/**
 * Why the server's binlog is not the history `saved` was read from, or null:
 * its newest file is numbered below the saved one, the saved file is shorter
 * than the saved offset, or (MariaDB) its GTID position is behind the saved
 * one. Each means a RESET MASTER or a failover to a server with lower binlog
 * numbers: positions went backwards, and versions must move to a new epoch.
 * A file merely purged (older than the server's oldest) is not history going back.
 */
export async function binlogWentBack(connection: Connection, saved: BinlogPosition): Promise<string | null> {
  const [logs] = await connection.query<RowDataPacket[]>('SHOW BINARY LOGS');
  const files = logs.map((l) => ({ name: String(l.Log_name), size: Number(l.File_size) }));
  const newest = files[files.length - 1];
  if (!newest) return null;
  const series = (file: string) => file.slice(0, file.lastIndexOf('.'));
  if (series(newest.name) !== series(saved.file)) return `the server's binlog is now ${newest.name}, another series than the saved ${saved.file} (log_bin renamed, or another server)`;
  if (fileSequence(newest.name) < fileSequence(saved.file)) {
    return `the newest binlog on the server is ${newest.name}, numbered below the saved position's ${saved.file} (RESET MASTER, or a failover to a server with lower binlog numbers)`;
  }
  const same = files.find((f) => f.name === saved.file);
  if (same && saved.offset > same.size) return `binlog ${saved.file} is only ${same.size} bytes long now, shorter than the saved offset ${saved.offset} (RESET MASTER?)`;
  if (saved.gtid) {
    let savedState: MariadbGtidState;
    try {
      savedState = MariadbGtidState.parse(saved.gtid);
    } catch {
      return null; // a MySQL GTID set: the file checks above decide
    }
    const [rows] = await connection.query<RowDataPacket[]>('SELECT @@GLOBAL.gtid_binlog_pos AS pos');
    const serverText = String(rows[0]?.pos ?? '');
    const server = new Map(MariadbGtidState.parse(serverText).toString().split(',').filter(Boolean).map((g) => [g.split('-')[0], BigInt(g.split('-')[2])]));
    for (const gtid of savedState.toString().split(',').filter(Boolean)) {
      const [domain, , sequence] = gtid.split('-');
      const now = server.get(domain);
      if (now === undefined || now < BigInt(sequence)) {
        return `the server's GTID position (${serverText || 'empty'}) is behind the saved ${saved.gtid} (RESET MASTER, or a failover to a server that lacks those transactions)`;
      }
    }
  }
  return null;
}
