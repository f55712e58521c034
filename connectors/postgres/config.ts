import { z } from 'zod';
import { DEFAULT_CHUNK_ROWS } from '../shared/chunk-sizer';

const identifier = z.string().regex(/^[a-z0-9_]+$/, 'lower-case letters, digits and "_"');

/** Config of a Postgres source, declared next to the connector that reads it. */
export const postgresSourceConfig = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" and "-" only'),
  type: z.literal('postgres'),
  url: z.string().regex(/^postgres(ql)?:\/\//, 'a postgres:// URL'),
  /** SCHEMA.TABLE names, or SCHEMA.* for every table of a schema. */
  tables: z.array(z.string().regex(/^[^.\s]+\.[^.\s]+$/, 'SCHEMA.TABLE or SCHEMA.*')).min(1),
  /** Replication slot; default tidewater_<name> (dashes become underscores). */
  slot: identifier.optional(),
  /** Publication; default tidewater_<name>. */
  publication: identifier.optional(),
  snapshot: z
    .strictObject({
      /**
       * initial: snapshot on first start (no saved position); never: stream only;
       * always: re-snapshot on every start; when_needed: also when the slot is gone.
       */
      mode: z.enum(['initial', 'never', 'always', 'when_needed']).default('initial'),
      /** The most rows read per primary-key chunk (fewer when rows are big: see ChunkSizer). */
      chunkSize: z.number().int().min(1).max(1_000_000).default(DEFAULT_CHUNK_ROWS),
      /** Tables read at the same time, each on its own connection. */
      parallelism: z.number().int().min(1).max(16).default(2),
    })
    .default({ mode: 'initial', chunkSize: DEFAULT_CHUNK_ROWS, parallelism: 2 }),
  /**
   * Milliseconds between heartbeats (a logical message written to the WAL), so
   * the slot advances and lag reads true on an idle or filtered database. 0 turns them off.
   */
  heartbeatIntervalMs: z.number().int().min(0).default(5_000),
  /**
   * Milliseconds without anything (data or keepalive) on the replication
   * connection after which it is taken for dead and the source reconnects: a
   * blackholed network never closes the socket. The service asks the server
   * for a keepalive after a quarter of this. 0 turns the watchdog off.
   */
  livenessTimeoutMs: z.number().int().min(0).default(30_000),
});

export type PostgresSourceConfig = z.infer<typeof postgresSourceConfig>;

export function defaultObjectName(sourceName: string): string {
  return `tidewater_${sourceName.toLowerCase().replace(/-/g, '_')}`;
}
