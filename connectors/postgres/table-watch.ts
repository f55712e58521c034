import { Client } from 'pg';
import { sleep } from '../../core/runtime/backoff';
import { Logger } from '../../core/runtime/logger';
import { readPrimaryKeys } from './primary-keys';
import { CapturedTable, checkTableCapturable, quoteIdent, quoteTable, resolveTables, tableName } from './slot';

export interface TableWatchOptions {
  admin: Client;
  sourceName: string;
  /** The configured `tables` (SCHEMA.TABLE or SCHEMA.*). */
  patterns: string[];
  publication: string;
  /** Shared with the stream and the resync coordinator: a joined table's key is added here. */
  primaryKeys: Map<string, string[]>;
  /** `schema.table` of every table captured now. */
  captured: Set<string>;
  intervalMs: number;
  signal: AbortSignal;
  logger: Logger;
  /** Queues the joined tables' existing rows for the lock-free resync path (durably). */
  onJoined(tables: string[]): Promise<void>;
}

/**
 * Tables created under a `schema.*` pattern while the source runs join the
 * capture: added to the publication (their later changes stream), and their
 * rows so far read through the resync path. Returns at once without patterns.
 */
export async function watchTables(options: TableWatchOptions): Promise<void> {
  if (!options.patterns.some((p) => p.endsWith('.*'))) return;
  const prefix = `source ${options.sourceName}`;
  const refused = new Set<string>();
  while (!options.signal.aborted) {
    await sleep(options.intervalMs, options.signal);
    if (options.signal.aborted) return;
    try {
      const found = await resolveTables(options.admin, prefix, options.patterns);
      const fresh = found.filter((t) => !options.captured.has(tableName(t)) && !refused.has(tableName(t)));
      const joined: CapturedTable[] = [];
      for (const table of fresh) {
        try {
          await checkTableCapturable(options.admin, prefix, options.admin.user ?? 'the source role', table);
        } catch (error) {
          refused.add(tableName(table));
          options.logger.warn('a new table matches the configured tables but cannot be captured', { table: tableName(table), error: (error as Error).message });
          continue;
        }
        await options.admin.query(`ALTER PUBLICATION ${quoteIdent(options.publication)} ADD TABLE ${quoteTable(table)}`);
        for (const [name, key] of await readPrimaryKeys(options.admin, [table])) options.primaryKeys.set(name, key);
        options.captured.add(tableName(table));
        joined.push(table);
      }
      if (joined.length === 0) continue;
      const names = joined.map(tableName);
      options.logger.info('tables joined the capture: added to the publication, their rows read through the resync path', { tables: names, publication: options.publication });
      await options.onJoined(names.filter((name) => options.primaryKeys.has(name)));
    } catch (error) {
      if (options.signal.aborted) return;
      options.logger.warn('looking for new tables failed; trying again', { error: (error as Error).message });
    }
  }
}
