import { Client } from 'pg';
import { formatLsn, Lsn } from './lsn';

/**
 * Errors the walsender raises while decoding the slot that come back at the
 * same WAL position on every retry: the slot can never move past it, so the
 * source would retry forever while every sink falls behind.
 * - "could not map filenode": Postgres's historic catalog snapshot at that
 *   position lacks the relation a change was written to (seen when DDL ran in
 *   the source database while the slot was being created).
 * - "publication ... does not exist": the publication was dropped while the
 *   slot was behind; recreating it does not help, because the slot reads the
 *   catalog as it was at each position.
 */
const UNDECODABLE = [/could not map filenode "([^"]+)" to relation OID/, /publication "([^"]+)" does not exist/];

/** How many consecutive failures at one position make the slot stuck: the first may be a coincidence, the second is the rule. */
const FAILURES_BEFORE_STUCK = 2;

function undecodableMessage(error: unknown): string | null {
  for (let e = error as Error | undefined, depth = 0; e && depth < 8; e = e.cause as Error | undefined, depth++) {
    const message = String(e.message ?? '');
    if (UNDECODABLE.some((pattern) => pattern.test(message))) return message;
  }
  return null;
}

/** Counts stream failures that are undecodable WAL at one start position; any other outcome starts the count again. */
export class UndecodableSlotTracker {
  private static readonly bySlot = new Map<string, UndecodableSlotTracker>();

  /** The tracker of one slot on one server: it outlives the Source instances, which last one attempt each. */
  static of(server: string, slot: string): UndecodableSlotTracker {
    const key = `${server}/${slot}`;
    let tracker = UndecodableSlotTracker.bySlot.get(key);
    if (!tracker) UndecodableSlotTracker.bySlot.set(key, (tracker = new UndecodableSlotTracker()));
    return tracker;
  }

  private stuck: { lsn: Lsn; message: string; failures: number } | null = null;

  /**
   * Records how an attempt ended (`error` null: stopped cleanly). `from` is
   * where it streamed from, null when it failed before streaming: such an
   * attempt (server down, or refused by the stuck slot) changes nothing.
   */
  noteAttemptEnd(from: Lsn | null, error: unknown): void {
    if (from === null) return;
    const message = undecodableMessage(error);
    if (message === null) {
      this.stuck = null;
      return;
    }
    this.stuck = this.stuck && this.stuck.lsn === from ? { lsn: from, message, failures: this.stuck.failures + 1 } : { lsn: from, message, failures: 1 };
  }

  /** The failure that repeats at `position`, once it has failed there often enough to be the rule. */
  stuckAt(position: Lsn | undefined): { lsn: Lsn; message: string } | null {
    return this.stuck && this.stuck.lsn === position && this.stuck.failures >= FAILURES_BEFORE_STUCK ? this.stuck : null;
  }

  clear(): void {
    this.stuck = null;
  }
}

/** "Postgres cannot decode slot S at L: <what failed> (<relation it names today>)", for the log and the error. */
export async function describeUndecodable(admin: Client, slot: string, stuck: { lsn: Lsn; message: string }): Promise<string> {
  const file = /could not map filenode "[^"]*\/(\d+)"/.exec(stuck.message);
  let relation = '';
  if (file) {
    const { rows } = await admin.query<{ name: string | null }>('SELECT pg_filenode_relation(0, $1::oid)::regclass::text AS name', [file[1]]);
    if (rows[0]?.name) relation = ` (that file is ${rows[0].name} today)`;
  }
  return `Postgres fails to decode replication slot ${slot} at ${formatLsn(stuck.lsn)} on every retry: "${stuck.message.replace(/^.*?(could not map|publication)/, '$1')}"${relation}; ` +
    'the slot can never move past that position';
}
