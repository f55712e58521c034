import { Connection, RowDataPacket } from 'mysql2/promise';
import { BinlogPosition, compareBinlogPositions, formatBinlogPosition } from './binlog-position';
import { MariadbGtid, MariadbGtidState, parseMariadbGtid } from './gtid';

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
 * `saved` (`0-1-42[,1-2-7]`) continues: just after the transaction with each
 * saved GTID (the earliest such place over the domains), found by the exact
 * GTID, server id included: after a lossy failover the new primary numbers
 * its own transactions on from where it was, so a sequence number alone can
 * name a different transaction there. Not found when the binlog does not hold
 * that transaction (asynchronous replication lost it, the binlog was purged
 * past it or reset).
 */
export async function findGtidPosition(connection: Connection, saved: string): Promise<GtidLookup> {
  let gtids: MariadbGtid[];
  try {
    gtids = MariadbGtidState.parse(saved).toString().split(',').filter(Boolean).map(parseMariadbGtid);
  } catch {
    return { found: false, reason: `the saved GTID state "${saved}" is not a MariaDB GTID position (MySQL GTID sets are not followed across servers yet)` };
  }
  if (gtids.length === 0) return { found: false, reason: 'no GTID was saved with the position' };
  const [posRows] = await connection.query<RowDataPacket[]>('SELECT @@GLOBAL.gtid_binlog_pos AS pos');
  const serverPos = String(posRows[0]?.pos ?? '') || 'empty';
  const [logs] = await connection.query<RowDataPacket[]>('SHOW BINARY LOGS');
  const files = logs.map((l) => ({ name: String(l.Log_name), size: Number(l.File_size) }));
  if (files.length === 0) return { found: false, reason: 'the server has no binlog files' };
  const places: BinlogPosition[] = [];
  for (const gtid of gtids) {
    // Files that start after the GTID's sequence number in its domain cannot hold it: search from the last one that does not.
    let first = 0;
    for (let i = files.length - 1; i > 0; i--) {
      const start = (await fileStartState(connection, files[i].name)).get(gtid.domain);
      if (start === undefined || start <= gtid.sequence) {
        first = i;
        break;
      }
    }
    const place = await placeAfter(connection, files.slice(first), gtid);
    const name = `${gtid.domain}-${gtid.server}-${gtid.sequence}`;
    if (!place) {
      return {
        found: false,
        reason: `its binlog (${files[0].name} to ${files[files.length - 1].name}, GTID position ${serverPos}) does not hold the transaction with GTID ${name}: ` +
          `asynchronous replication lost it at the failover, or the binlog was purged past it or reset`,
      };
    }
    places.push(place);
  }
  places.sort(compareBinlogPositions);
  const position = places[0];
  const gtid = await gtidAt(connection, position);
  const note = gtids.length > 1 ? `several GTID domains (${saved}): resuming at the earliest of their places, so changes of the other domains between may be delivered again` : undefined;
  return { found: true, position: gtid ? { ...position, gtid } : position, ...(note ? { note } : {}) };
}

/** Just after the transaction `gtid` in `files`: where the next transaction begins, or the end of the last file; null when it is not there. */
async function placeAfter(connection: Connection, files: { name: string; size: number }[], gtid: MariadbGtid): Promise<BinlogPosition | null> {
  let seen = false;
  for (const file of files) {
    // Pages start FROM the next event's position: LIMIT offset, count would re-read the file from its start for each page.
    for (let from: number | null = null; ; ) {
      const events = await binlogEvents(connection, file.name, from, PAGE);
      for (const event of events) {
        const other = gtidOf(event);
        if (!other) continue;
        if (seen) return { file: file.name, offset: event.pos };
        seen = other.domain === gtid.domain && other.server === gtid.server && other.sequence === gtid.sequence;
      }
      if (events.length < PAGE) break;
      from = events[events.length - 1].end;
    }
  }
  const last = files[files.length - 1];
  return seen ? { file: last.name, offset: last.size } : null;
}

/** The GTID of a transaction's first event (`BEGIN GTID 0-1-42`, `GTID 0-1-42` before DDL, `XA START … GTID 0-1-42`). */
function gtidOf(event: BinlogEvent): MariadbGtid | null {
  if (event.type !== 'Gtid') return null;
  const match = /GTID (\d+-\d+-\d+)/.exec(event.info);
  return match ? parseMariadbGtid(match[1]) : null;
}

/** Per domain, the highest sequence number before a binlog file (its Gtid_list event lists the last GTID per domain and server). */
async function fileStartState(connection: Connection, file: string): Promise<Map<number, bigint>> {
  const events = await binlogEvents(connection, file, null, 4);
  const list = events.find((e) => e.type === 'Gtid_list');
  const highest = new Map<number, bigint>();
  for (const part of (list?.info ?? '').replace(/[[\]\s]/g, '').split(',').filter(Boolean)) {
    const { domain, sequence } = parseMariadbGtid(part);
    if (sequence > (highest.get(domain) ?? -1n)) highest.set(domain, sequence);
  }
  return highest;
}

async function binlogEvents(connection: Connection, file: string, from: number | null, count: number): Promise<BinlogEvent[]> {
  const [rows] = await connection.query<RowDataPacket[]>(`SHOW BINLOG EVENTS IN ${connection.escape(file)}${from === null ? '' : ` FROM ${Number(from)}`} LIMIT ${count}`);
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

/** For messages: the position with the server it belongs to. */
export function describeSaved(position: BinlogPosition, server: string | undefined): string {
  return `${formatBinlogPosition(position)}${server ? ` (server ${server})` : ''}`;
}
