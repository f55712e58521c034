import { z } from 'zod';
import { sinkTypes, sourceTypes } from '../core/runtime/registry';

/** The service's config file (DESIGN §5), composed from each component's own schema. */
const serviceConfig = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" and "-" only'),
  dataDir: z.string().default('./var'),
  http: z
    .strictObject({
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(9464),
    })
    .default({ host: '127.0.0.1', port: 9464 }),
});

const embeddedLogConfig = z.strictObject({
  type: z.literal('embedded'),
  partitions: z.number().int().min(1).max(1024).default(8),
  /** Defaults to <dataDir>/log. */
  dir: z.string().optional(),
});

const sourceSchemas = Object.values(sourceTypes).map((t) => t.configSchema);
const sinkSchemas = Object.values(sinkTypes).map((t) => t.configSchema);

export const configSchema = z
  .strictObject({
    service: serviceConfig,
    log: z.discriminatedUnion('type', [embeddedLogConfig]).default({ type: 'embedded', partitions: 8 }),
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
  });

export type CdcConfig = z.infer<typeof configSchema>;

export const knownTypes = {
  log: ['embedded'],
  sources: Object.keys(sourceTypes),
  sinks: Object.keys(sinkTypes),
};
