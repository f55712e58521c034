import { Client } from 'pg';
import { decodeKey, keyString } from '../../core/event/change-event';
import { rawTextClient } from './pg-session';
import { readPrimaryKeys } from './primary-keys';
import { quoteIdent, quoteTable, splitTableName } from './slot';
import { TypeCatalog } from './type-catalog';
import { SourceRowReader } from '../../core/verify/sink-reader';
import { whereKeysSql } from '../../core/verify/where-keys';

/** Reads a Postgres source's rows for `cdc verify`, decoded exactly as the source's snapshot decodes them (raw text + TypeCatalog). */
export class PgSourceRowReader implements SourceRowReader {
  private readonly client: Client;
  private readonly catalog: TypeCatalog;
  private readonly keys = new Map<string, string[]>();
  private connected: Promise<void> | null = null;

  constructor(url: string, private readonly patterns: readonly string[]) {
    this.client = rawTextClient(url);
    this.catalog = new TypeCatalog((sql, params) => this.client.query(sql, params));
  }

  async tables(): Promise<string[]> {
    await this.connect();
    const names: string[] = [];
    for (const pattern of this.patterns) {
      const { schema, table } = splitTableName(pattern);
      if (table !== '*') names.push(pattern);
      else {
        const { rows } = await this.client.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY 1`, [schema]);
        names.push(...rows.map((r) => `${schema}.${r.table_name as string}`));
      }
    }
    return names;
  }

  async primaryKey(table: string): Promise<string[]> {
    await this.connect();
    if (!this.keys.has(table)) {
      const found = await readPrimaryKeys(this.client, [splitTableName(table)]);
      const key = found.get(table);
      if (!key) throw new Error(`cannot verify ${table}: it has no primary key to compare rows by`);
      this.keys.set(table, key);
    }
    return this.keys.get(table)!;
  }

  async chunk(table: string, afterKey: unknown[] | null, limit: number): Promise<{ rows: Array<Record<string, unknown>>; lastKey: unknown[] | null }> {
    const key = await this.primaryKey(table);
    const columns = key.map(quoteIdent).join(', ');
    const params = [...(afterKey ?? []), limit];
    const where = afterKey ? `WHERE (${columns}) > (${key.map((_, i) => `$${i + 1}`).join(', ')})` : '';
    const result = await this.client.query(`SELECT * FROM ${quoteTable(splitTableName(table))} ${where} ORDER BY ${columns} LIMIT $${params.length}`, params);
    const last = result.rows[result.rows.length - 1] as Record<string, string> | undefined;
    return { rows: await this.decode(result), lastKey: last ? key.map((c) => last[c]) : null };
  }

  async rowsByKey(table: string, keys: readonly string[]): Promise<Map<string, Record<string, unknown>>> {
    const found = new Map<string, Record<string, unknown>>();
    if (keys.length === 0) return found;
    const key = await this.primaryKey(table);
    const result = await this.client.query(`SELECT * FROM ${quoteTable(splitTableName(table))} WHERE ${await this.whereKeys(table, keys)}`);
    for (const row of await this.decode(result)) found.set(keyString(Object.fromEntries(key.map((c) => [c, row[c]]))), row);
    return found;
  }

  async whereKeys(table: string, keys: readonly string[]): Promise<string> {
    return whereKeysSql(await this.primaryKey(table), keys, quoteIdent, literal);
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }

  private async decode(result: { rows: Record<string, string | null>[]; fields: { name: string; dataTypeID: number }[] }): Promise<Array<Record<string, unknown>>> {
    await this.catalog.load(result.fields.map((f) => f.dataTypeID));
    return result.rows.map((raw) => Object.fromEntries(result.fields.map((f) => [f.name, raw[f.name] === null ? null : this.catalog.decode(f.dataTypeID, raw[f.name]!)])));
  }

  private connect(): Promise<void> {
    this.connected ??= this.client.connect().then(() => undefined);
    return this.connected!;
  }
}

/** A key string back into its column values (the inverse of keyString). */
export function splitKey(key: string, columns: number): string[] {
  return decodeKey(key, columns);
}

/** An untyped SQL string literal: the server casts it to the column's type. */
function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}
