import { quoteIdent, SqlEngine } from './engine';
import { WarehouseMeta } from './meta';

/**
 * Switches readers from generation `live` to `next` inside the caller's
 * transaction: every reader-facing table (and its history) is renamed away and
 * replaced by the new generation's, then the old ones are dropped. A table the
 * new generation never wrote becomes an empty copy, so readers find it empty
 * rather than missing.
 */
export async function promoteGeneration(engine: SqlEngine, meta: WarehouseMeta, live: number, next: number): Promise<void> {
  if (next === live) return;
  const newTables = await meta.tables(next);
  const oldTables = await meta.tables(live);
  const exists = async (name: string) => (await engine.columns(name)) !== null;
  const suffix = `__g${next}`;
  for (const reader of oldTables.filter((t) => !newTables.includes(t))) {
    for (const name of [reader, `${reader}__changes`]) {
      if (await exists(name)) await engine.query(engine.emptyCopySql(name, name + suffix));
    }
    await meta.addTable(next, reader);
    newTables.push(reader);
  }
  for (const reader of newTables) {
    for (const name of [reader, `${reader}__changes`]) {
      const retired = `${name}__retired`;
      if (await exists(name)) await engine.query(`ALTER TABLE ${engine.table(name)} RENAME TO ${quoteIdent(retired)}`);
      if (await exists(name + suffix)) await engine.query(`ALTER TABLE ${engine.table(name + suffix)} RENAME TO ${quoteIdent(name)}`);
      await engine.query(`DROP TABLE IF EXISTS ${engine.table(retired)}`);
    }
  }
  await meta.setLiveGeneration(next);
  await meta.dropOtherGenerations(next);
}
