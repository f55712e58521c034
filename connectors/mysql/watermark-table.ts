import { Connection, RowDataPacket } from 'mysql2/promise';
import { quoteTable, serverErrorCode, splitTable } from './connection';

export type WatermarkKind = 'low' | 'high' | 'check';

/** Server errors that mean "this user may not": table, column or database access denied. */
const ER_ACCESS_DENIED = new Set([1044, 1142, 1143, 1227]);
const ER_BAD_DB = 1049;
const ER_NO_SUCH_TABLE = 1146;

/**
 * The table through which resync watermarks travel the binlog: one row per
 * source, overwritten for each watermark (`INSERT ... ON DUPLICATE KEY
 * UPDATE`), so it never grows and needs no DELETE grant. The binlog stream
 * reads its row events but never emits them.
 */
export class WatermarkTable {
  private ready = false;

  constructor(readonly table: string, private readonly sourceName: string, private readonly account: string) {}

  /** Creates the table when missing and proves the user may write it; errors name the GRANT that fixes them. */
  async ensure(connection: Connection): Promise<void> {
    await this.explain(async () => {
      const { schema, table } = splitTable(this.table);
      const [rows] = await connection.query<RowDataPacket[]>('SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [schema, table]);
      // Only when missing: CREATE ... IF NOT EXISTS needs the CREATE grant even when the table exists.
      if (rows.length === 0) {
        await connection.query(
          `CREATE TABLE IF NOT EXISTS ${quoteTable(this.table)} (
             source VARCHAR(64) NOT NULL PRIMARY KEY,
             window_id CHAR(36) NOT NULL,
             kind VARCHAR(8) NOT NULL,
             written_at TIMESTAMP(6) NOT NULL
           ) COMMENT 'tidewater resync watermarks: written by the CDC service, safe to drop when no resync runs'`,
        );
      }
      await this.write(connection, '00000000-0000-0000-0000-000000000000', 'check');
    });
    this.ready = true;
  }

  /** Writes one watermark in its own transaction (the connection is in autocommit mode). */
  async mark(connection: Connection, windowId: string, kind: WatermarkKind): Promise<void> {
    if (!this.ready) await this.ensure(connection);
    try {
      await this.explain(() => this.write(connection, windowId, kind));
    } catch (error) {
      if (serverErrorCode((error as Error).cause ?? error) === ER_NO_SUCH_TABLE) this.ready = false; // dropped meanwhile: the retry recreates it
      throw error;
    }
  }

  private async write(connection: Connection, windowId: string, kind: WatermarkKind): Promise<void> {
    await connection.query(
      `INSERT INTO ${quoteTable(this.table)} (source, window_id, kind, written_at) VALUES (?, ?, ?, NOW(6))
       ON DUPLICATE KEY UPDATE window_id = VALUES(window_id), kind = VALUES(kind), written_at = VALUES(written_at)`,
      [this.sourceName, windowId, kind],
    );
  }

  private async explain(action: () => Promise<void>): Promise<void> {
    try {
      await action();
    } catch (error) {
      const code = serverErrorCode(error);
      const { schema } = splitTable(this.table);
      if (code === ER_BAD_DB) {
        throw new Error(
          `the resync watermark table ${this.table} cannot be created: database ${schema} does not exist ` +
            `(CREATE DATABASE \`${schema}\`, or set watermarkTable: DATABASE.TABLE on source ${this.sourceName})`,
          { cause: error },
        );
      }
      if (code !== undefined && ER_ACCESS_DENIED.has(code)) {
        throw new Error(
          `the user ${this.account} may not write the resync watermark table ${this.table} (${(error as Error).message}): ` +
            `GRANT INSERT, UPDATE, CREATE ON ${quoteTable(this.table)} TO ${this.account}`,
          { cause: error },
        );
      }
      throw error;
    }
  }
}

/** A watermark as the binlog carries it, or null for rows of other sources or shapes. */
export function readWatermark(row: Record<string, unknown>, sourceName: string): { windowId: string; kind: WatermarkKind } | null {
  if (row.source !== sourceName || typeof row.window_id !== 'string') return null;
  const kind = row.kind;
  return kind === 'low' || kind === 'high' || kind === 'check' ? { windowId: row.window_id, kind } : null;
}
