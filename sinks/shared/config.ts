import { z } from 'zod';

/** Config pieces every sink shares (docs/architecture.md §5): name, table routing, per-table options. */
export const sinkName = z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" and "-" only');

const tablePattern = z
  .string()
  .regex(/^(\*|[^.\s*]+\.(\*|[^.\s*]+))$/, 'SCHEMA.TABLE, SCHEMA.* or *');

/** Options any sink accepts per table; each sink extends this with its own keys. */
export const baseTableOptions = z.strictObject({
  /** Only these columns reach the sink (key columns always do). */
  columns: z.array(z.string()).min(1).optional(),
  /** These columns never reach the sink (key columns always do). */
  excludeColumns: z.array(z.string()).optional(),
});

export type BaseTableOptions = z.infer<typeof baseTableOptions>;

/**
 * `<dataDir>/dead-letters/<sink>.jsonl` rolls over to `<sink>.<n>.jsonl` once it would pass
 * maxFileBytes; beyond maxFiles files (current one included) the oldest is deleted, logged
 * and counted (cdc_sink_dead_letter_files_dropped_total). Default 64 MiB × 8.
 */
export const deadLetterOptions = z
  .strictObject({
    maxFileBytes: z.number().int().min(1024).default(64 * 1024 * 1024),
    maxFiles: z.number().int().min(1).default(8),
  })
  .default({ maxFileBytes: 64 * 1024 * 1024, maxFiles: 8 });

/** `tables`, `exclude`, `tableOptions` and `deadLetters` (keyed by table pattern) for a sink's config object. */
export function tableRouting<T extends z.ZodType<object>>(tableOptions: T) {
  return {
    /** SCHEMA.TABLE names, SCHEMA.* or "*" for every table. */
    tables: z.array(tablePattern).min(1).default(['*']),
    /** Patterns removed from `tables`. */
    exclude: z.array(tablePattern).default([]),
    /** Options per table pattern; the most specific pattern wins key by key. */
    tableOptions: z.record(tablePattern, tableOptions).default({}),
    /** Rotation of the sink's dead-letter files (every sink type has them; see deadLetterOptions). */
    deadLetters: deadLetterOptions,
  };
}

/**
 * `verify:` on a sink: continuous verification. Every `intervalMs` the service
 * compares the next `chunksPerRun` primary-key chunks (rolling over the tables)
 * with the source, as `cdc verify` does, counts rows checked and mismatches in
 * metrics and logs mismatching keys. It never repairs.
 */
export const sinkVerify = z.strictObject({
  intervalMs: z.number().int().min(100).default(60_000),
  chunksPerRun: z.number().int().positive().default(1),
  /** Rows per chunk. */
  chunkSize: z.number().int().positive().max(10_000).default(500),
  /** A mismatching row is read again after this delay (the pipeline may not have applied a change yet); counted only if it still differs from an unchanged source row. */
  recheckDelayMs: z.number().int().min(0).default(5_000),
});

export type SinkVerifyConfig = z.infer<typeof sinkVerify>;
