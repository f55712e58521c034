import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { ColumnType } from '../shared/column-types';
import { copyTextChunks } from './copy-text';
import { quoteIdent, quoteText, SqlEngine, SqlRow } from './engine';

const TYPE_NAMES: Record<ColumnType, string> = { boolean: 'boolean', integer: 'bigint', double: 'double precision', text: 'text', json: 'jsonb' };

/**
 * Postgres as the warehouse: tables in one schema, one connection per sink.
 * Batches are staged into a temporary table with COPY FROM STDIN (text
 * format), the bulk path Postgres offers; one MERGE applies them from there.
 */
export class PostgresEngine implements SqlEngine {
  readonly historyJsonType = 'json';
  readonly keyedTables = true;
  readonly applyLatest = 'merge';
  /**
   * A row the MERGE updates gets its new version in the same page when there is
   * room (a HOT update: no new primary-key entry); full pages (fillfactor 100)
   * leave no room, so a replay of mostly updates rewrote the index per change.
   */
  readonly currentTableStorage = ' WITH (fillfactor = 70)';
  readonly historyDedup = 'primary-key';
  readonly commitSeqType = 'numeric(20,0)';
  private client: Client | null = null;

  constructor(private readonly url: string, private readonly schema: string) {}

  table(name: string): string {
    return `${quoteIdent(this.schema)}.${quoteIdent(name)}`;
  }

  typeName(type: ColumnType): string {
    return TYPE_NAMES[type];
  }

  castFails(textExpr: string, sqlType: string): string {
    return `(${textExpr} IS NOT NULL AND NOT pg_temp.cdc_castable(${textExpr}, '${sqlType.replace(/'/g, "''")}'))`;
  }

  jsonRows(stage: string, where: string, imageExpr: string, fields: ReadonlyMap<string, string>) {
    const definitions = [...fields].map(([column, type]) => `${quoteIdent(column)} ${type}`).join(', ');
    return {
      from: `(SELECT * FROM ${quoteIdent(stage)} AS s WHERE ${where}) AS s CROSS JOIN LATERAL json_to_record(CAST(${imageExpr} AS json)) AS j(${definitions})`,
      field: (column: string) => `j.${quoteIdent(column)}`,
    };
  }

  emptyCopySql(from: string, to: string): string {
    return `CREATE TABLE ${this.table(to)} (LIKE ${this.table(from)} INCLUDING ALL)`;
  }

  listHas(listExpr: string, column: string): string {
    return `coalesce(CAST(${listExpr} AS jsonb) ? ${quoteText(column)}, false)`;
  }

  async open(): Promise<void> {
    const client = new Client({ connectionString: this.url, application_name: 'tidewater warehouse sink' });
    client.on('error', () => undefined); // a broken connection surfaces as the next query's error
    await client.connect();
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(this.schema)}`);
      // PG 15 has no pg_input_is_valid(): a session-local helper tells whether a value casts to a declared type.
      await client.query(`CREATE OR REPLACE FUNCTION pg_temp.cdc_castable(value text, type text) RETURNS boolean LANGUAGE plpgsql AS $$
        BEGIN EXECUTE format('SELECT %L::%s', value, type); RETURN true; EXCEPTION WHEN others THEN RETURN false; END $$`);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    this.client = client;
  }

  async close(): Promise<void> {
    await this.client?.end().catch(() => undefined);
    this.client = null;
  }

  async begin(): Promise<void> {
    await this.query('BEGIN');
  }

  async commit(): Promise<void> {
    await this.query('COMMIT');
  }

  async rollback(): Promise<void> {
    await this.query('ROLLBACK');
  }

  async query(sql: string, params?: readonly unknown[]): Promise<SqlRow[]> {
    const result = await this.requireOpen().query(sql, params as unknown[] | undefined);
    // A multi-statement string returns one result per statement: the last one's rows.
    const last = Array.isArray(result) ? result[result.length - 1] : result;
    return (last?.rows ?? []) as SqlRow[];
  }

  async stage(name: string, columns: readonly string[], rows: readonly (readonly (string | null)[])[]): Promise<void> {
    const client = this.requireOpen();
    // Created once per session (emptied by every commit), so no catalog churn per batch; emptied here too (a transaction stages once per table).
    await client.query(`CREATE TEMP TABLE IF NOT EXISTS ${quoteIdent(name)} (${columns.map((c) => `${quoteIdent(c)} text`).join(', ')}) ON COMMIT DELETE ROWS;
      DELETE FROM pg_temp.${quoteIdent(name)}`);
    if (rows.length === 0) return;
    const copy = client.query(copyFrom(`COPY pg_temp.${quoteIdent(name)} (${columns.map(quoteIdent).join(', ')}) FROM STDIN`));
    await pipeline(Readable.from(copyTextChunks(rows)), copy);
  }

  async columns(name: string): Promise<Map<string, string> | null> {
    const rows = await this.query(
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`,
      [this.schema, name],
    );
    return rows.length ? new Map(rows.map((r) => [String(r.column_name), String(r.data_type)])) : null;
  }

  private requireOpen(): Client {
    if (!this.client) throw new Error(`postgres warehouse: used before open() or after close()`);
    return this.client;
  }
}
