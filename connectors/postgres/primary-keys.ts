import { Client } from 'pg';
import { CapturedTable, tableName } from './slot';

/** Primary-key columns per `schema.table`, in key order; tables without one are left out. */
export async function readPrimaryKeys(client: Client, tables: CapturedTable[]): Promise<Map<string, string[]>> {
  const keys = new Map<string, string[]>();
  for (const t of tables) {
    const { rows } = await client.query<{ attname: string }>(
      `SELECT a.attname
         FROM pg_index i
         JOIN pg_class c ON c.oid = i.indrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        WHERE n.nspname = $1 AND c.relname = $2 AND i.indisprimary
        ORDER BY array_position(i.indkey::int2[], a.attnum)`,
      [t.schema, t.table],
    );
    if (rows.length > 0) keys.set(tableName(t), rows.map((r) => r.attname));
  }
  return keys;
}
