import { z } from 'zod';
import { baseTableOptions, sinkName, sinkVerify, tableRouting } from '../shared/config';

export const esTableOptions = baseTableOptions.extend({
  /** The alias readers query, instead of `<indexPrefix><schema>.<table>` (lower case). */
  index: z.string().regex(/^[a-z0-9][^A-Z\\/*?"<>| ,#:]*$/, 'a lower-case Elasticsearch index name').optional(),
  /** Field mappings merged over the ones derived from the rows, e.g. { created_at: { type: date_nanos } }. */
  mappings: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
});

export const elasticsearchSinkConfig = z.strictObject({
  name: sinkName,
  type: z.literal('elasticsearch'),
  /** e.g. http://127.0.0.1:9200 */
  node: z.string().regex(/^https?:\/\//, 'an http:// or https:// URL'),
  username: z.string().optional(),
  password: z.string().optional(),
  /** An API key (the base64 `id:api_key` ES returns as `encoded`), instead of username and password. */
  apiKey: z.string().optional(),
  /** With an https:// node: PEM file paths (or PEM text) of the CA to trust and a client certificate. */
  tls: z
    .strictObject({
      ca: z.string().min(1).optional(),
      cert: z.string().min(1).optional(),
      key: z.string().min(1).optional(),
      servername: z.string().min(1).optional(),
    })
    .optional(),
  /** Trust the server whose certificate chain holds this SHA-256 fingerprint (AA:BB:...), as ES prints at setup; instead of, or beside, tls.ca. */
  caFingerprint: z.string().regex(/^([0-9A-Fa-f]{2}:?){32}$/, 'a SHA-256 fingerprint: 64 hex digits, optionally in colon-separated pairs').optional(),
  /** Prepended to every alias: `<indexPrefix><schema>.<table>`. */
  indexPrefix: z.string().regex(/^[^A-Z\\/*?"<>| ,#:]*$/, 'lower case, without \\ / * ? " < > | space , # :').default(''),
  ...tableRouting(esTableOptions),
  /** Continuous verification against the source (off when absent). */
  verify: sinkVerify.optional(),
  /** Most actions in one _bulk request. */
  bulkActions: z.number().int().positive().default(1000),
  /** Attempts for items ES rejects with 429 or 5xx before the batch fails (the runner then retries it). */
  maxAttempts: z.number().int().positive().default(10),
  /** First delay before such a retry; it doubles per attempt, up to 10 s. */
  retryBaseMs: z.number().int().positive().default(200),
  requestTimeoutMs: z.number().int().positive().default(30_000),
});

export type ElasticsearchSinkConfig = z.infer<typeof elasticsearchSinkConfig>;
export type EsTableOptions = z.infer<typeof esTableOptions>;
