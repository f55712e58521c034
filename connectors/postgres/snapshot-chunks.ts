import { Client } from 'pg';
import { copyLiteral, copyRows } from './copy-chunk';
import { CapturedTable, quoteIdent, quoteTable } from './slot';

/** The column a table without a primary key is read by: its ctid, as text. */
export const CTID = '__tidewater_ctid';

export type Field = { name: string; dataTypeID: number; dataTypeModifier: number };

/** A row as COPY sent it: each column's text, null for NULL. */
export type ChunkRow = (string | null)[];

/** A chunk of a table: the rows after `after` (in key order), up to and including `upto`, at most `limit` of them. */
export interface ChunkRange {
  after?: string[];
  upto?: string[];
  limit?: number;
}

/** The columns a chunk returns, in COPY's order, with their types (COPY itself describes none). */
export async function describeColumns(client: Client, table: CapturedTable, key: string[] | undefined): Promise<Field[]> {
  const result = await client.query(`SELECT ${selectList(key)} FROM ${quoteTable(table)} LIMIT 0`);
  return result.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID, dataTypeModifier: f.dataTypeModifier }));
}

/** One chunk's rows, each its values' text in `fields` order (null for NULL), streamed through COPY. */
export async function readChunk(client: Client, table: CapturedTable, key: string[] | undefined, fields: Field[], range: ChunkRange): Promise<ChunkRow[]> {
  const rows: ChunkRow[] = [];
  await copyRows(client, chunkQuery(table, key, range), fields.length, (values) => void rows.push(values));
  return rows;
}

/** Where a row's key is: the key columns' positions in `fields` (the ctid column's without a key). */
export function keyIndexes(fields: Field[], key: string[] | undefined): number[] {
  return (key ?? [CTID]).map((name) => {
    const index = fields.findIndex((f) => f.name === name);
    if (index < 0) throw new Error(`snapshot: key column ${JSON.stringify(name)} is not among the columns read (${fields.map((f) => f.name).join(', ')}); was the table altered meanwhile?`);
    return index;
  });
}

/**
 * The key of the `limit`-th row after `after` (an index scan of the key only),
 * as the text the chunk's rows carry (the reader's values are raw text),
 * or undefined when fewer rows are left: the upper end of a chunk, so the
 * next chunk can be read on another connection before this one is.
 */
export async function chunkEndKey(client: Client, table: CapturedTable, key: string[], after: string[] | undefined, limit: number): Promise<string[] | undefined> {
  const columns = key.map(quoteIdent);
  const { rows } = await client.query({
    text: `SELECT ${columns.join(', ')} FROM ${quoteTable(table)} ${where(key, { after })}
           ORDER BY ${columns.join(', ')} OFFSET ${Math.max(1, Math.floor(limit)) - 1} LIMIT 1`,
    rowMode: 'array',
  });
  return rows[0] as string[] | undefined;
}

/**
 * Takes the table's ACCESS SHARE lock on a reader borrowed for it, waiting at
 * most `timeoutMs`; false if that is not enough. Why: a DDL statement queued
 * behind the table's own reader (which holds the lock until the snapshot ends)
 * would make a second reader wait for it forever, and the table's chunks with
 * it. Done in a savepoint, so a timeout leaves the reader's transaction usable.
 */
export async function lockForReading(client: Client, table: CapturedTable, timeoutMs = 1000): Promise<boolean> {
  await client.query('SAVEPOINT tidewater_borrow');
  try {
    await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(timeoutMs))}`);
    await client.query(`LOCK TABLE ${quoteTable(table)} IN ACCESS SHARE MODE`);
    await client.query('SET LOCAL lock_timeout TO DEFAULT');
    await client.query('RELEASE SAVEPOINT tidewater_borrow');
    return true;
  } catch (error) {
    if ((error as { code?: string }).code !== '55P03') throw error; // lock_not_available
    await client.query('ROLLBACK TO SAVEPOINT tidewater_borrow');
    await client.query('RELEASE SAVEPOINT tidewater_borrow');
    return false;
  }
}

function selectList(key: string[] | undefined): string {
  return key ? '*' : `ctid::text AS ${CTID}, *`;
}

/**
 * Keyset pagination: the rows of a range in key order (ctid order without a
 * key). Key values are SQL literals, since COPY takes no parameters;
 * unknown-typed literals take the key columns' types, as parameters did.
 */
function chunkQuery(table: CapturedTable, key: string[] | undefined, range: ChunkRange): string {
  const columns = key ? key.map(quoteIdent) : ['ctid'];
  const limit = range.limit === undefined ? '' : `LIMIT ${Math.max(1, Math.floor(range.limit))}`;
  return `SELECT ${selectList(key)} FROM ${quoteTable(table)} ${where(key, range)} ORDER BY ${columns.join(', ')} ${limit}`;
}

function where(key: string[] | undefined, range: ChunkRange): string {
  const columns = (key ? key.map(quoteIdent) : ['ctid']).join(', ');
  const tuple = (values: string[]) => (key ? values.map(copyLiteral).join(', ') : `${copyLiteral(values[0])}::tid`);
  const conditions = [
    ...(range.after ? [`(${columns}) > (${tuple(range.after)})`] : []),
    ...(range.upto ? [`(${columns}) <= (${tuple(range.upto)})`] : []),
  ];
  return conditions.length ? `WHERE ${conditions.join(' AND ')}` : '';
}
