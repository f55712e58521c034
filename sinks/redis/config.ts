import { z } from 'zod';
import { baseTableOptions, sinkName, sinkVerify, tableRouting } from '../shared/config';
import { checkKeyTemplate } from './key-template';

const keyTemplate = z.string().superRefine((template, ctx) => {
  const problem = checkKeyTemplate(template);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

const ttlSeconds = z.number().int().positive();

export const redisTableOptions = baseTableOptions.extend({
  /** Overrides the sink's keyTemplate for these tables. */
  keyTemplate: keyTemplate.optional(),
  /** Overrides the sink's ttlSeconds for these tables. */
  ttlSeconds: ttlSeconds.optional(),
});

export const redisSinkConfig = z.strictObject({
  name: sinkName,
  type: z.literal('redis'),
  /** redis://host:port/db, or rediss:// for TLS. */
  url: z.string().regex(/^rediss?:\/\//, 'a redis:// URL'),
  /** With a rediss:// URL: PEM file paths (or PEM text) of the CA to trust and the client certificate. */
  tls: z
    .strictObject({
      ca: z.string().min(1).optional(),
      cert: z.string().min(1).optional(),
      key: z.string().min(1).optional(),
      /** The name the server's certificate must carry, when it differs from the URL's host. */
      servername: z.string().min(1).optional(),
    })
    .optional(),
  /** Prepended to every key the sink writes, bookkeeping included. */
  keyPrefix: z.string().default(''),
  /** Row key after the prefix; placeholders {schema}, {table} and {key} (keyString(): a single column as is; composite keys joined by ":", with ":" and "\\" escaped by "\\" inside each part). */
  keyTemplate: keyTemplate.default('{schema}.{table}:{key}'),
  /** Rows expire this many seconds after their last write (absent: never). */
  ttlSeconds: ttlSeconds.optional(),
  ...tableRouting(redisTableOptions),
  /** Continuous verification against the source (off when absent). */
  verify: sinkVerify.optional(),
  batchSize: z.number().int().positive().default(500),
}).superRefine((config, ctx) => {
  if (config.tls && !config.url.startsWith('rediss://')) {
    ctx.addIssue({ code: 'custom', path: ['tls'], message: 'tls needs a rediss:// URL (redis:// is plain text)' });
  }
});

export type RedisSinkConfig = z.infer<typeof redisSinkConfig>;
export type RedisTableOptions = z.infer<typeof redisTableOptions>;
