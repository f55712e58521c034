import { z } from 'zod';
import { logConfig, logTypes } from '../core/log/log-config';
import { sinkTypes, sourceTypes } from '../app/registry';
import { logLevels } from '../core/runtime/logger';

/** The service's config file (docs/architecture.md §5), composed from each component's own schema. */
const serviceConfig = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" and "-" only'),
  dataDir: z.string().default('./var'),
  /** Records below this level are not logged; `cdc run --log-level` and $CDC_LOG_LEVEL override it. */
  logLevel: z.enum(logLevels).optional(),
  http: z
    .strictObject({
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(9464),
      /** Bearer token for the admin API; required when `host` is not a loopback address. */
      token: z.string().min(16, 'at least 16 characters').optional(),
    })
    .default({ host: '127.0.0.1', port: 9464 })
    .refine((http) => http.token !== undefined || ['127.0.0.1', 'localhost', '::1'].includes(http.host), {
      message: 'a token is required when the admin API listens beyond loopback: set service.http.token (e.g. "${CDC_ADMIN_TOKEN}")',
      path: ['token'],
    }),
});

const sourceSchemas = Object.values(sourceTypes).map((t) => t.configSchema);
const sinkSchemas = Object.values(sinkTypes).map((t) => t.configSchema);

export const configSchema = z
  .strictObject({
    service: serviceConfig,
    /** The change-event log: embedded (default) or kafka; its schema lives in core/log/log-config.ts. */
    log: logConfig.default(logConfig.parse({ type: 'embedded' })),
    sources: z.array(z.discriminatedUnion('type', sourceSchemas as [typeof sourceSchemas[0]])).default([]),
    sinks: z.array(z.discriminatedUnion('type', sinkSchemas as [typeof sinkSchemas[0]])).default([]),
  })
  .superRefine((config, ctx) => {
    for (const list of ['sources', 'sinks'] as const) {
      const seen = new Set<string>();
      config[list].forEach((component, index) => {
        if (seen.has(component.name)) {
          ctx.addIssue({ code: 'custom', path: [list, index, 'name'], message: `duplicate name "${component.name}": names must be unique` });
        }
        seen.add(component.name);
      });
    }
    // Two binlog readers with one server id make the server drop the older one, over and over.
    const serverIds = new Map<number, string>();
    config.sources.forEach((source, index) => {
      if (source.type !== 'mysql') return;
      const other = serverIds.get(source.serverId);
      if (other) ctx.addIssue({ code: 'custom', path: ['sources', index, 'serverId'], message: `serverId ${source.serverId} is also used by source "${other}": each MySQL source needs its own` });
      serverIds.set(source.serverId, source.name);
    });
  });

export type CdcConfig = z.infer<typeof configSchema>;

export const knownTypes = {
  log: logTypes,
  sources: Object.keys(sourceTypes),
  sinks: Object.keys(sinkTypes),
};
