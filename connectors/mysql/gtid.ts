/**
 * GTIDs of both flavours, kept alongside binlog positions (binlog-position.ts).
 *
 * MariaDB: a GTID is `domain-server-sequence` (`0-1-42`); the state at a
 * point of the binlog is the last GTID per replication domain
 * (`0-1-42,1-3-7`, what @@gtid_binlog_pos shows).
 *
 * MySQL: a GTID is `uuid:n` (MySQL 8.3+ also `uuid:tag:n`); the state is a
 * GTID set of intervals per uuid (`uuid:1-42:50,uuid2:1-3`, what
 * @@gtid_executed shows).
 */
export interface GtidState {
  /** Records that the transaction `gtid` is now part of the state. */
  add(gtid: string): void;
  toString(): string;
}

export interface MariadbGtid {
  domain: number;
  server: number;
  sequence: bigint;
}

export function parseMariadbGtid(text: string): MariadbGtid {
  const match = /^(\d+)-(\d+)-(\d+)$/.exec(text.trim());
  if (!match) throw new Error(`malformed MariaDB GTID "${text}": expected DOMAIN-SERVER-SEQUENCE like "0-1-42"`);
  return { domain: Number(match[1]), server: Number(match[2]), sequence: BigInt(match[3]) };
}

/** Last GTID per domain. Adding replaces the domain's entry: it is "last seen", not a maximum (failovers may lower sequences). */
export class MariadbGtidState implements GtidState {
  private readonly domains = new Map<number, MariadbGtid>();

  static parse(text: string): MariadbGtidState {
    const state = new MariadbGtidState();
    for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
      const gtid = parseMariadbGtid(part);
      if (state.domains.has(gtid.domain)) throw new Error(`malformed MariaDB GTID position "${text}": domain ${gtid.domain} appears twice`);
      state.domains.set(gtid.domain, gtid);
    }
    return state;
  }

  add(gtid: string): void {
    const parsed = parseMariadbGtid(gtid);
    this.domains.set(parsed.domain, parsed);
  }

  toString(): string {
    return [...this.domains.values()]
      .sort((a, b) => a.domain - b.domain)
      .map((g) => `${g.domain}-${g.server}-${g.sequence}`)
      .join(',');
  }
}

export interface MysqlGtid {
  uuid: string;
  /** MySQL 8.3+ tag; '' when untagged. */
  tag: string;
  gno: bigint;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TAG = /^[a-z_][a-z0-9_]{0,31}$/;

export function parseMysqlGtid(text: string): MysqlGtid {
  const parts = text.trim().toLowerCase().split(':');
  const [uuid, tag, gno] = parts.length === 3 ? parts : [parts[0], '', parts[1]];
  if (parts.length < 2 || parts.length > 3 || !UUID.test(uuid) || (tag !== '' && !TAG.test(tag)) || !/^\d+$/.test(gno ?? '') || BigInt(gno) < 1n) {
    throw new Error(`malformed MySQL GTID "${text}": expected UUID:NUMBER like "3e11fa47-71ca-11e1-9e33-c80aa9429562:23"`);
  }
  return { uuid, tag, gno: BigInt(gno) };
}

type Interval = [start: bigint, end: bigint]; // inclusive

/** A MySQL GTID set: per (uuid, tag), sorted disjoint intervals of transaction numbers. */
export class MysqlGtidSet implements GtidState {
  private readonly sets = new Map<string, Interval[]>();

  static parse(text: string): MysqlGtidSet {
    const set = new MysqlGtidSet();
    for (const block of text.replace(/\s/g, '').toLowerCase().split(',').filter(Boolean)) {
      const [uuid, ...items] = block.split(':');
      if (!UUID.test(uuid) || items.length === 0) throw new Error(`malformed MySQL GTID set "${text}": block "${block}" should be UUID:INTERVAL[:INTERVAL...]`);
      let tag = '';
      for (const item of items) {
        const interval = /^(\d+)(?:-(\d+))?$/.exec(item);
        if (interval) set.addInterval(uuid, tag, BigInt(interval[1]), BigInt(interval[2] ?? interval[1]));
        else if (TAG.test(item)) tag = item;
        else throw new Error(`malformed MySQL GTID set "${text}": "${item}" is neither an interval nor a tag`);
      }
    }
    return set;
  }

  add(gtid: string): void {
    const { uuid, tag, gno } = parseMysqlGtid(gtid);
    this.addInterval(uuid, tag, gno, gno);
  }

  contains(gtid: string): boolean {
    const { uuid, tag, gno } = parseMysqlGtid(gtid);
    return (this.sets.get(`${uuid}:${tag}`) ?? []).some(([start, end]) => start <= gno && gno <= end);
  }

  toString(): string {
    const byUuid = new Map<string, string[]>();
    for (const key of [...this.sets.keys()].sort()) {
      const [uuid, tag] = key.split(':');
      const intervals = this.sets.get(key)!.map(([s, e]) => (s === e ? `${s}` : `${s}-${e}`));
      const items = byUuid.get(uuid) ?? [];
      items.push(...(tag ? [tag] : []), ...intervals);
      byUuid.set(uuid, items);
    }
    return [...byUuid].map(([uuid, items]) => `${uuid}:${items.join(':')}`).join(',');
  }

  private addInterval(uuid: string, tag: string, start: bigint, end: bigint): void {
    if (start < 1n || end < start) throw new Error(`malformed MySQL GTID interval ${start}-${end} for ${uuid}`);
    const key = `${uuid}:${tag}`;
    const merged: Interval[] = [];
    let current: Interval = [start, end];
    for (const interval of this.sets.get(key) ?? []) {
      if (interval[1] + 1n < current[0] || current[1] + 1n < interval[0]) merged.push(interval);
      else current = [interval[0] < current[0] ? interval[0] : current[0], interval[1] > current[1] ? interval[1] : current[1]];
    }
    merged.push(current);
    this.sets.set(key, merged.sort((a, b) => (a[0] < b[0] ? -1 : 1)));
  }
}

/** Parses a GTID state of either flavour: MySQL sets contain `:`, MariaDB positions never do. */
export function parseGtidState(text: string): GtidState {
  return text.includes(':') ? MysqlGtidSet.parse(text) : MariadbGtidState.parse(text);
}

/** An empty state of the flavour a single GTID belongs to. */
export function emptyGtidStateFor(gtid: string): GtidState {
  return gtid.includes(':') ? new MysqlGtidSet() : new MariadbGtidState();
}
