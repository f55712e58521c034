import { Client } from 'pg';
import { PostgresCheckpoint, ServerHistory } from './checkpoint';
import { formatLsn, Lsn, parseLsn } from './lsn';

/** What IDENTIFY_SYSTEM says of the server: its cluster, timeline and the end of its WAL. */
export interface ServerIdentity extends ServerHistory {
  walEnd: Lsn;
}

/** One line of a timeline history file: `timeline` ended at `switchpoint`, where its child began. */
export interface TimelineSwitch {
  timeline: number;
  switchpoint: Lsn;
}

/**
 * IDENTIFY_SYSTEM (and TIMELINE_HISTORY past timeline 1) on a short replication
 * connection: it needs only the REPLICATION attribute the source needs anyway,
 * where pg_control_system() may be closed to non-superusers.
 */
export async function identifyServer(url: string): Promise<{ identity: ServerIdentity; history: TimelineSwitch[] }> {
  const connection = new Client({ connectionString: url, replication: 'database', connectionTimeoutMillis: 10_000 } as never);
  connection.on('error', () => undefined); // the query in flight fails and reports it
  await connection.connect();
  try {
    const { rows } = await connection.query<{ systemid: string; timeline: string | number; xlogpos: string }>('IDENTIFY_SYSTEM');
    const identity = { systemId: String(rows[0].systemid), timeline: Number(rows[0].timeline), walEnd: parseLsn(rows[0].xlogpos) };
    if (identity.timeline <= 1) return { identity, history: [] };
    const { rows: files } = await connection.query<{ content: string | Buffer }>(`TIMELINE_HISTORY ${identity.timeline}`);
    return { identity, history: parseTimelineHistory(String(files[0]?.content ?? '')) };
  } finally {
    await connection.end().catch(() => undefined);
  }
}

/** A timeline history file: `parentTLI<tab>switchpoint<tab>reason` per line, `#` comments. */
export function parseTimelineHistory(content: string): TimelineSwitch[] {
  const switches: TimelineSwitch[] = [];
  for (const line of content.split('\n')) {
    const match = /^\s*(\d+)\s+([0-9A-Fa-f]+\/[0-9A-Fa-f]+)/.exec(line);
    if (match) switches.push({ timeline: Number(match[1]), switchpoint: parseLsn(match[2]) });
  }
  return switches;
}

/**
 * Why `server` is not the history the saved position was read from, or null
 * when streaming may go on from it. Each reason means versions made from this
 * server's LSNs could sort below versions already stored: another cluster
 * (initdb, pg_upgrade, another server), WAL that ends below the saved position
 * (a restore from an older backup, a failover to a server that lagged), or a
 * timeline that forked from the saved one before the saved position.
 *
 * The slot's confirmed_flush_lsn below the saved LSN is NOT such a sign: the
 * saved position is durable before the slot hears of it, so after a crash the
 * slot is normally a little behind.
 */
export function historyChange(saved: PostgresCheckpoint, identity: ServerIdentity, history: TimelineSwitch[], server: string): string | null {
  const position = saved.snapshot?.position ?? saved.position;
  const at = formatLsn(position);
  if (saved.server && saved.server.systemId !== identity.systemId) {
    return `${server} is another cluster (system identifier ${identity.systemId}) than the one the saved position ${at} was read on (${saved.server.systemId}): a new or pg_upgrade'd cluster, or another server`;
  }
  if (identity.walEnd < position) {
    return `the WAL of ${server} ends at ${formatLsn(identity.walEnd)}, below the saved position ${at}: restored from an older backup, or a failover to a server that had not received everything`;
  }
  if (saved.server && saved.server.timeline !== identity.timeline) {
    const ended = history.find((h) => h.timeline === saved.server!.timeline);
    if (!ended) {
      return `${server} is on timeline ${identity.timeline}, whose history does not contain timeline ${saved.server.timeline} of the saved position ${at}: another branch of the cluster's history`;
    }
    if (ended.switchpoint < position) {
      return `${server} is on timeline ${identity.timeline}, which left timeline ${saved.server.timeline} at ${formatLsn(ended.switchpoint)}, before the saved position ${at}: the changes after ${formatLsn(ended.switchpoint)} are another history (failover or point-in-time restore)`;
    }
  }
  return null;
}
