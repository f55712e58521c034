/** Hand-built pgoutput messages and an assembler to feed them to, for the transaction assembler's tests. */
import { Pgoutput } from 'pg-logical-replication';
import { ChangeEvent } from '../../core/event/change-event';
import { makeVersion } from '../../core/event/version';
import { Lsn, parseLsn, ZERO_LSN } from '../../connectors/postgres/lsn';
import { AssemblerOptions, TransactionAssembler } from '../../connectors/postgres/transaction-assembler';
import { PgType } from '../../connectors/postgres/types';
import { SourceBatch } from '../../core/contracts/source';

// ---------------------------------------------------------------------------
// Builders for pgoutput messages, shaped like pg-logical-replication's decoder
// output. Tuples hold RAW TEXT: our plugin replaces column parsers with identity.
// LSNs inside messages are zero-padded like the decoder prints them; the lsn
// passed to onMessage is unpadded like the replication stream's XLogData LSN.
// ---------------------------------------------------------------------------

export type Tuple = Record<string, string | null | undefined>;

export interface ColumnSpec {
  name: string;
  typeOid: number;
  /** Part of the replica identity (flag bit 1). */
  key?: boolean;
}

export function relation(
  table: string,
  columns: ColumnSpec[],
  replicaIdentity: Pgoutput.MessageRelation['replicaIdentity'] = 'default',
): Pgoutput.MessageRelation {
  const [schema, name] = table.split('.');
  return {
    tag: 'relation',
    relationOid: 16384 + table.length,
    schema,
    name,
    replicaIdentity,
    columns: columns.map((c) => ({
      name: c.name,
      flags: c.key ? 1 : 0,
      typeOid: c.typeOid,
      typeMod: -1,
      typeSchema: null,
      typeName: null,
      parser: (x: unknown) => x,
    })),
    keyColumns: columns.filter((c) => c.key).map((c) => c.name),
  };
}

/** `0/200` → `00000000/00000200`, as the pgoutput decoder prints LSNs. */
export function padded(lsn: string): string {
  const [hi, lo] = lsn.split('/');
  return `${hi.padStart(8, '0')}/${lo.padStart(8, '0')}`.toUpperCase();
}

/** Commit time as the decoder gives it: microseconds since the Unix epoch. */
export function micros(date: Date, extraMicros = 0): bigint {
  return BigInt(date.getTime()) * 1000n + BigInt(extraMicros);
}

export const T0 = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678));

export function begin(commitLsn: string, xid: number, commitTime: bigint = micros(T0)): Pgoutput.MessageBegin {
  return { tag: 'begin', commitLsn: padded(commitLsn), commitTime, xid };
}

export function commit(commitLsn: string, commitEndLsn: string, commitTime: bigint = micros(T0)): Pgoutput.MessageCommit {
  return { tag: 'commit', flags: 0, commitLsn: padded(commitLsn), commitEndLsn: padded(commitEndLsn), commitTime };
}

export function insert(rel: Pgoutput.MessageRelation, row: Tuple): Pgoutput.MessageInsert {
  return { tag: 'insert', relation: rel, new: row };
}

export function update(rel: Pgoutput.MessageRelation, row: Tuple, prior: { key?: Tuple; old?: Tuple } = {}): Pgoutput.MessageUpdate {
  return { tag: 'update', relation: rel, key: prior.key ?? null, old: prior.old ?? null, new: row };
}

export function del(rel: Pgoutput.MessageRelation, prior: { key?: Tuple; old?: Tuple }): Pgoutput.MessageDelete {
  return { tag: 'delete', relation: rel, key: prior.key ?? null, old: prior.old ?? null };
}

export function truncate(...relations: Pgoutput.MessageRelation[]): Pgoutput.MessageTruncate {
  return { tag: 'truncate', cascade: false, restartIdentity: false, relations };
}

export type Step = [lsn: string, message: Pgoutput.Message];

export function assembler(options: Partial<AssemblerOptions> = {}, resumeFrom: Lsn = ZERO_LSN): TransactionAssembler {
  return new TransactionAssembler(
    {
      sourceName: 'shop-pg',
      db: 'shop',
      primaryKeys: new Map([['public.customers', ['id']]]),
      maxBatchEvents: 1000,
      ...options,
    },
    resumeFrom,
  );
}

/** Feeds every step; returns the batches handed out, in order. */
export function feed(target: TransactionAssembler, steps: Step[]): SourceBatch[] {
  const batches: SourceBatch[] = [];
  for (const [lsn, message] of steps) {
    const batch = target.onMessage(lsn, message);
    if (batch) batches.push(batch);
  }
  return batches;
}

export function events(batches: SourceBatch[]): ChangeEvent[] {
  return batches.flatMap((b) => b.events);
}

export function versionAt(commitLsn: string, index: number): string {
  return makeVersion(parseLsn(commitLsn), index);
}

// A typical table: int8 key, a few lossless types.
export const customers = relation('public.customers', [
  { name: 'id', typeOid: PgType.int8, key: true },
  { name: 'name', typeOid: 25 },
  { name: 'balance', typeOid: PgType.numeric },
  { name: 'updated_at', typeOid: PgType.timestamptz },
  { name: 'active', typeOid: PgType.bool },
]);

export const alice: Tuple = { id: '9223372036854775807', name: 'Alice', balance: '12.50', updated_at: '2024-01-02 03:04:05.5+00', active: 't' };
export const aliceDecoded = { id: '9223372036854775807', name: 'Alice', balance: '12.50', updated_at: '2024-01-02T03:04:05.500000Z', active: true };

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------
