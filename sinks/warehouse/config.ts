import { z } from 'zod';
import { baseTableOptions, sinkName, sinkVerify, tableRouting } from '../shared/config';
import { SIZE_PATTERN } from './duckdb-settings';

const identifier = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'letters, digits and "_", not starting with a digit');

export const warehouseTableOptions = baseTableOptions.extend({
  /** The reader-facing table, instead of `<schema>__<table>`; its history is `<table>__changes`. */
  table: identifier.optional(),
  /**
   * SQL types for columns, e.g. { amount: "DECIMAL(38,10)", created_at: "TIMESTAMPTZ" }.
   * Other columns get a type inferred from the values (BOOLEAN, BIGINT, DOUBLE, text, JSON).
   * A value that does not cast to its declared type goes to the dead-letter file.
   */
  columnTypes: z.record(z.string(), z.string().regex(/^[A-Za-z][A-Za-z0-9_ ,()]*$/, 'a SQL type name such as DECIMAL(38,10)')).optional(),
});

export const warehouseSinkConfig = z
  .strictObject({
    name: sinkName,
    type: z.literal('warehouse'),
    engine: z.enum(['duckdb', 'postgres']).default('duckdb'),
    /** DuckDB database file (default <dataDir>/<name>.duckdb); relative paths resolve against the config file's folder. */
    path: z.string().optional(),
    /**
     * DuckDB's memory cap (`SET memory_limit`: its buffer pool, caches and operator memory; larger work spills to
     * <file>.tmp). DuckDB's own default, 80% of the machine's RAM, lets its cache grow beside the other sinks.
     * 48MB, not 64MB: the checkpoint threshold is half of it (duckdb-settings.ts), so after a kill -9 DuckDB replays
     * at most 24 MB of WAL and the catch-up holds less: the fault suite's kill-9-x20@pg-embedded peaked at
     * 274/291/302/280 MB against 330/311/332/296 MB on the same four seeds (recovery 2.4-3.6 s against
     * 3.3-11.6 s); the sink benchmark's update replay within its spread; a 600k-row insert-only drain ~12% slower
     * alone, but the suite's 500k-row transaction recovered as before (33.9 / 27.0 s against 33.5 / 28.3 s).
     */
    memoryLimit: z.string().regex(SIZE_PATTERN, 'a size such as 64MB').default('48MB'),
    /** DuckDB worker threads (`SET threads`; DuckDB would take one per core, which the other sinks and the source share). */
    threads: z.number().int().min(1).max(64).default(1),
    /** Postgres connection URL (engine: postgres). */
    url: z.string().regex(/^postgres(ql)?:\/\//, 'a postgres:// URL').optional(),
    /** Postgres schema the tables go to (engine: postgres). */
    schema: identifier.default('public'),
    ...tableRouting(warehouseTableOptions),
    /** Continuous verification against the source (off when absent). */
    verify: sinkVerify.optional(),
  })
  .superRefine((config, ctx) => {
    if (config.engine === 'postgres' && !config.url) ctx.addIssue({ code: 'custom', path: ['url'], message: 'required when engine is postgres' });
    if (config.engine === 'duckdb' && config.url) ctx.addIssue({ code: 'custom', path: ['url'], message: 'only for engine: postgres (DuckDB uses path)' });
  });

export type WarehouseSinkConfig = z.infer<typeof warehouseSinkConfig>;
export type WarehouseTableOptions = z.infer<typeof warehouseTableOptions>;
