import { z } from 'zod';
import { DEFAULT_CHUNK_ROWS } from '../shared/chunk-sizer';

/** Config of a MySQL/MariaDB source, declared next to the connector that reads it. */
export const mysqlSourceConfig = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" and "-" only'),
  type: z.literal('mysql'),
  /**
   * mysql://user:password@host:port/ (mariadb:// works too); the database part
   * is ignored. Query options: ssl-mode (DISABLED, REQUIRED, VERIFY_CA,
   * VERIFY_IDENTITY), ssl-ca, ssl-cert, ssl-key (file paths); they override `ssl`.
   */
  url: z.string().regex(/^(mysql|mariadb):\/\//, 'a mysql:// URL'),
  /**
   * TLS to the server, for queries and the binlog connection alike: PEM file
   * paths (or PEM text). mode defaults to VERIFY_IDENTITY (the CA signed the
   * server's certificate and it names the URL's host).
   */
  ssl: z
    .strictObject({
      ca: z.string().min(1).optional(),
      cert: z.string().min(1).optional(),
      key: z.string().min(1).optional(),
      mode: z.enum(['DISABLED', 'REQUIRED', 'VERIFY_CA', 'VERIFY_IDENTITY']).optional(),
    })
    .optional(),
  /**
   * The replica server id this source announces when it reads the binlog.
   * It must differ from the server's own server_id and from every other
   * replica's (two readers with one id make the server drop the older one).
   */
  serverId: z.number().int().min(1).max(4294967295),
  /** DATABASE.TABLE names, or DATABASE.* for every table of a database. */
  tables: z.array(z.string().regex(/^[^.\s]+\.[^.\s]+$/, 'DATABASE.TABLE or DATABASE.*')).min(1),
  snapshot: z
    .strictObject({
      /**
       * initial: snapshot on first start (no saved position); never: stream only,
       * from the binlog's end at first start; always: re-snapshot on every start;
       * when_needed: also re-snapshot when the saved position was purged from the binlog.
       */
      mode: z.enum(['initial', 'never', 'always', 'when_needed']).default('initial'),
      /** The most rows read per primary-key chunk (fewer when rows are big: see ChunkSizer). */
      chunkSize: z.number().int().min(1).max(1_000_000).default(DEFAULT_CHUNK_ROWS),
    })
    .default({ mode: 'initial', chunkSize: DEFAULT_CHUNK_ROWS }),
  /**
   * Milliseconds between the server's heartbeats on an idle binlog
   * (MASTER_HEARTBEAT_PERIOD), so lag reads true and a dead connection is
   * noticed. 0 turns them off.
   */
  heartbeatIntervalMs: z.number().int().min(0).max(4_294_967).default(5_000),
  /**
   * Milliseconds without anything (events or heartbeats) on the binlog
   * connection after which it is taken for dead and the source reconnects: a
   * blackholed network never closes the socket. The server is asked for
   * heartbeats at least three times per timeout. 0 turns the watchdog off.
   */
  livenessTimeoutMs: z.number().int().min(0).max(4_294_967).default(30_000),
  /**
   * DATABASE.TABLE where `cdc resync` writes its low/high watermarks (created
   * on first use; the user needs INSERT, UPDATE and CREATE on it). Default:
   * `tidewater_watermarks` in the database of the first captured table.
   */
  watermarkTable: z.string().regex(/^[^.\s]+\.[^.\s]+$/, 'DATABASE.TABLE').optional(),
}).superRefine((config, ctx) => {
  const watermarks = watermarkTableOf(config);
  if (config.tables.includes(watermarks)) {
    ctx.addIssue({ code: 'custom', path: ['tables'], message: `${watermarks} is the resync watermark table (watermarkTable): it cannot be captured too; remove it or choose another watermarkTable` });
  }
});

export type MysqlSourceConfig = z.infer<typeof mysqlSourceConfig>;

/** The resync watermark table: configured, or `tidewater_watermarks` in the first captured table's database. */
export function watermarkTableOf(config: { tables: string[]; watermarkTable?: string }): string {
  return config.watermarkTable ?? `${config.tables[0].slice(0, config.tables[0].indexOf('.'))}.tidewater_watermarks`;
}
