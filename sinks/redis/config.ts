import { z } from 'zod';

export const redisSinkConfig = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" and "-" only'),
  type: z.literal('redis'),
  url: z.string().regex(/^rediss?:\/\//, 'a redis:// URL'),
  keyPrefix: z.string().default(''),
  /** SCHEMA.TABLE names, or "*" for every table. */
  tables: z.array(z.string()).min(1).default(['*']),
  batchSize: z.number().int().positive().default(500),
});

export type RedisSinkConfig = z.infer<typeof redisSinkConfig>;
