import { Connection, RowDataPacket } from 'mysql2/promise';
import { BinlogPosition, compareBinlogPositions, formatBinlogPosition } from './binlog-position';
import { MariadbGtidState, parseMariadbGtid } from './gtid';

/**
 * Failover support (issue 12.2): a saved `file:offset` names a place in ONE
 * server's binlog. After a failover (or a VIP, DNS or URL switch) the source
 * talks to another server, whose binlog has other file names and offsets but
 * the same transactions under the same MariaDB GTIDs (log_slave_updates).
 * The GTID state saved with the position says where to resume there.
 */

/** Who the server is: MySQL's server_uuid, else (MariaDB has none) its server_id. */
export async function serverIdentity(connection: Connection): Promise<string> {
  const [rows] = await connection.query<RowDataPacket[]>(`SHOW GLOBAL VARIABLES WHERE Variable_name IN ('server_id', 'server_uuid')`);
  const value = (name: string) => rows.find((r) => String(r.Variable_name).toLowerCase() === name)?.Value as string | undefined;
  const identity = value('server_uuid') || value('server_id');
  if (!identity) throw new Error('the server reports neither server_uuid nor server_id');
  return String(identity);
}

export type GtidLookup = { found: true; position: BinlogPosition; note?: string } | { found: false; reason: string };

interface BinlogEvent {
  file: string;
  pos: number;
  type: string;
  end: number;
  info: string;
}

/** Events read per SHOW BINLOG EVENTS page: a binlog file may hold millions. */
const PAGE = 5000;

/**
 * Where, in this server's binlog, the history after the MariaDB GTID state
 * `saved` (`0-1-42[,1-2-7]`) begins: before the first transaction of each
 * saved domain whose sequence number is above the saved one (the earliest such
 * place over the domains), or the binlog's end when the server has nothing
 * newer. Not found when the server lacks transactions up to the saved ones
 * (it is behind: async replication lost them), or its binlog no longer reaches
 * back that far (purged). Sequence numbers rise within a domain on every
 * server of a topology (gtid_strict_mode keeps it so), which is what makes
 * "first sequence above the saved one" a place in history.
 */
export async function findGtidPosition(connection: Connection, saved: string): Promise<GtidLookup> {
  let state: Map<number, bigint>;
  try {
    state = domainSequences(MariadbGtidState.parse(saved).toString());
  } catch {
    return { found: false, reason: `the saved GTID state "${saved}" is not a MariaDB GTID position (MySQL GTID sets are not followed across servers yet)` };
  }
  if (state.size === 0) return { found: false, reason: 'no GTID was saved with the position' };
  const [posRows] = await connection.query<RowDataPacket[]>('SELECT @@GLOBAL.gtid_binlog_pos AS pos');
  const serverPos = String(posRows[0]?.pos ?? '');
  const server = domainSequences(serverPos);
  for (const [domain, sequence] of state) {
    const have = server.get(domain);
    if (have === undefined || have < sequence) {
      return { found: false, reason: `its binlog's GTID position (${serverPos || 'empty'}) lacks the saved ${saved}: the transactions up to it never reached this server (asynchronous replication lost them at the failover) or its binlog was reset` };
    }
  }
  const [logs] = await connection.query<RowDataPacket[]>('SHOW BINARY LOGS');
  const files = logs.map((l) => ({ name: String(l.Log_name), size: Number(l.File_size) }));
  if (files.length === 0) return { found: false, reason: 'the server has no binlog files' };
  // The oldest file must start at or before the saved state in every domain, or transactions in between were purged.
  const oldestStart = await fileStartState(connection, files[0].name);
  for (const [domain, sequence] of state) {
    const start = oldestStart.get(domain);
    if (start !== undefined && start > sequence) {
      return { found: false, reason: `its oldest binlog ${files[0].name} starts after GTID ${domain}-…-${start}, past the saved ${saved}: the binlog between was purged` };
    }
  }
  // Per domain: the file to search is the last one starting at or before the saved sequence.
  const places: BinlogPosition[] = [];
  for (const [domain, sequence] of state) {
    let first = 0;
    for (let i = files.length - 1; i > 0; i--) {
      const start = (await fileStartState(connection, files[i].name)).get(domain);
      if (start !== undefined && start <= sequence) {
        first = i;
        break;
      }
    }
    places.push(await firstAfter(connection, files.slice(first), domain, sequence));
  }
  places.sort(compareBinlogPositions);
  const position = places[0];
  const gtid = await gtidAt(connection, position);
  const note = state.size > 1 ? `several GTID domains (${saved}): resuming at the earliest of their places, so changes of the other domains between may be delivered again` : undefined;
  return { found: true, position: gtid ? { ...position, gtid } : position, ...(note ? { note } : {}) };
}

/** The start of the first transaction of `domain` numbered above `sequence` in `files`, or the end of the last file. */
async function firstAfter(connection: Connection, files: { name: string; size: number }[], domain: number, sequence: bigint): Promise<BinlogPosition> {
  for (const file of files) {
    for (let offset = 0; ; offset += PAGE) {
      const events = await binlogEvents(connection, file.name, offset, PAGE);
      for (const event of events) {
        const gtid = gtidOf(event);
        if (gtid && gtid.domain === domain && gtid.sequence > sequence) return { file: file.name, offset: event.pos };
      }
      if (events.length < PAGE) break;
    }
  }
  const last = files[files.length - 1];
  return { file: last.name, offset: last.size };
}

/** The GTID of a transaction's first event (`BEGIN GTID 0-1-42`, `GTID 0-1-42` before DDL, `XA START … GTID 0-1-42`). */
function gtidOf(event: BinlogEvent): { domain: number; sequence: bigint } | null {
  if (event.type !== 'Gtid') return null;
  const match = /GTID (\d+-\d+-\d+)/.exec(event.info);
  if (!match) return null;
  const { domain, sequence } = parseMariadbGtid(match[1]);
  return { domain, sequence };
}

/** The GTID state a binlog file starts with (its Gtid_list event: the last GTID per domain of the files before). */
async function fileStartState(connection: Connection, file: string): Promise<Map<number, bigint>> {
  const events = await binlogEvents(connection, file, 0, 4);
  const list = events.find((e) => e.type === 'Gtid_list');
  return domainSequences((list?.info ?? '').replace(/[[\]\s]/g, ''));
}

async function binlogEvents(connection: Connection, file: string, offset: number, count: number): Promise<BinlogEvent[]> {
  const [rows] = await connection.query<RowDataPacket[]>(`SHOW BINLOG EVENTS IN ${connection.escape(file)} LIMIT ${offset}, ${count}`);
  return rows.map((r) => ({ file, pos: Number(r.Pos), type: String(r.Event_type), end: Number(r.End_log_pos), info: String(r.Info ?? '') }));
}

async function gtidAt(connection: Connection, position: BinlogPosition): Promise<string | null> {
  try {
    const [rows] = await connection.query<RowDataPacket[]>('SELECT BINLOG_GTID_POS(?, ?) AS gtid', [position.file, position.offset]);
    return (rows[0]?.gtid as string | null) || null;
  } catch {
    return null;
  }
}

function domainSequences(text: string): Map<number, bigint> {
  const map = new Map<number, bigint>();
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const gtid = parseMariadbGtid(part);
    map.set(gtid.domain, gtid.sequence);
  }
  return map;
}

/** For messages: the position with the server it belongs to. */
export function describeSaved(position: BinlogPosition, server: string | undefined): string {
  return `${formatBinlogPosition(position)}${server ? ` (server ${server})` : ''}`;
}
