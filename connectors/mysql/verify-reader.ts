import { Connection } from 'mysql2/promise';
import { keyString } from '../../core/event/change-event';
import { MysqlCatalog } from './catalog';
import { SavedKeyValue } from './checkpoint';
import { watermarkTableOf } from './config';
import { MysqlSslConfig, openConnection, parseMysqlUrl, quoteIdent } from './connection';
import { ChunkReader } from './resync-reader';
import { whereKeysSql } from '../../core/verify/where-keys';
import { SourceRowReader } from '../../core/verify/sink-reader';

/**
 * Reads a MySQL/MariaDB source's rows for `cdc verify`, with the resync's own
 * chunk reader, so values are decoded exactly as the source emits them.
 */
export class MysqlSourceRowReader implements SourceRowReader {
  private admin: Connection | null = null;
  private catalog: MysqlCatalog | null = null;
  private reader: ChunkReader | null = null;

  constructor(private readonly config: { name: string; url: string; tables: string[]; watermarkTable?: string; ssl?: MysqlSslConfig }) {}

  async tables(): Promise<string[]> {
    return (await this.open()).catalog.tables;
  }

  async primaryKey(table: string): Promise<string[]> {
    const key = (await this.open()).catalog.primaryKey(table);
    if (!key?.length) throw new Error(`cannot verify ${table}: it has no primary key to compare rows by`);
    return key;
  }

  async chunk(table: string, afterKey: unknown[] | null, limit: number): Promise<{ rows: Array<Record<string, unknown>>; lastKey: unknown[] | null }> {
    const { reader } = await this.open();
    const chunk = await reader.read({ requestId: 'verify', table, rows: 0, afterKey: (afterKey as SavedKeyValue[] | null) ?? undefined }, limit);
    return { rows: chunk.rows.map((event) => event.after!), lastKey: chunk.lastKey ?? null };
  }

  async rowsByKey(table: string, keys: readonly string[]): Promise<Map<string, Record<string, unknown>>> {
    const found = new Map<string, Record<string, unknown>>();
    if (keys.length === 0) return found;
    const { reader } = await this.open();
    const key = await this.primaryKey(table);
    const chunk = await reader.read({ requestId: 'verify', table, rows: 0, where: await this.whereKeys(table, keys) }, keys.length + 1);
    for (const event of chunk.rows) found.set(keyString(Object.fromEntries(key.map((c) => [c, event.after![c]]))), event.after!);
    return found;
  }

  async whereKeys(table: string, keys: readonly string[]): Promise<string> {
    return whereKeysSql(await this.primaryKey(table), keys, quoteIdent, literal);
  }

  async close(): Promise<void> {
    this.reader?.close();
    await this.admin?.end().catch(() => undefined);
  }

  private async open(): Promise<{ catalog: MysqlCatalog; reader: ChunkReader }> {
    if (!this.catalog || !this.reader) {
      const connection = parseMysqlUrl(this.config.url, this.config.ssl);
      this.admin = await openConnection(connection);
      const catalog = new MysqlCatalog(this.admin, this.config.tables, [watermarkTableOf(this.config)]);
      await catalog.load(`source ${this.config.name}`);
      this.catalog = catalog;
      this.reader = new ChunkReader({ connection, catalog, sourceName: this.config.name, chunkSize: 1000 });
    }
    return { catalog: this.catalog, reader: this.reader };
  }
}

/** A string literal (MySQL escapes backslashes too); the server casts it to the column's type. */
function literal(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}
