import { z } from 'zod';

/** Config of a Postgres source, declared next to the connector that reads it. */
export const postgresSourceConfig = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" and "-" only'),
    type: z.literal('postgres'),
    url: z.string().regex(/^postgres(ql)?:\/\//, 'a postgres:// URL'),
    tables: z.array(z.string().regex(/^[^.\s]+\.[^.\s]+$/, 'SCHEMA.TABLE')).min(1),
    /** Replication slot; default tidewater_<name> (dashes become underscores). */
    slot: z.string().regex(/^[a-z0-9_]+$/, 'lower-case letters, digits and "_"').optional(),
    /** Publication; default tidewater_<name>. */
    publication: z.string().regex(/^[a-z0-9_]+$/, 'lower-case letters, digits and "_"').optional(),
  });

export type PostgresSourceConfig = z.infer<typeof postgresSourceConfig>;

export function defaultObjectName(sourceName: string): string {
  return `tidewater_${sourceName.toLowerCase().replace(/-/g, '_')}`;
}
