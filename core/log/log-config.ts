import { z } from 'zod';

const ms = z.number().int().min(0);

/** `log: { type: embedded, ... }`: the segmented file log in <dataDir>/log. */
export const embeddedLogConfig = z.strictObject({
  type: z.literal('embedded'),
  /** Fixed once the log exists: rows are hashed to partitions. */
  partitions: z.number().int().min(1).max(1024).default(8),
  /** Defaults to <dataDir>/log. */
  dir: z.string().optional(),
  /** A partition's active segment is sealed and a new one started past this size. */
  segmentBytes: z.number().int().min(64 * 1024).max(1024 * 1024 * 1024).default(64 * 1024 * 1024),
  durability: z
    .strictObject({
      /** group: one fdatasync per group of appends; always: one per append; none: no fdatasync (survives kill -9, not power loss). */
      fsync: z.enum(['group', 'always', 'none']).default('group'),
      /** With fsync: group, wait this long before each sync to gather more appends. */
      groupCommitMs: ms.max(1000).default(0),
    })
    .default({ fsync: 'group', groupCommitMs: 0 }),
  compaction: z
    .strictObject({
      enabled: z.boolean().default(true),
      intervalMs: ms.min(100).default(60_000),
      /** Share of a partition's sealed bytes appended since its last pass that triggers the next. */
      minDirtyRatio: z.number().min(0).max(1).default(0.5),
      /** Deletes and truncates stay this long (and until every consumer read them). */
      tombstoneRetentionMs: ms.default(24 * 3600_000),
    })
    .default({ enabled: true, intervalMs: 60_000, minDirtyRatio: 0.5, tombstoneRetentionMs: 24 * 3600_000 }),
});

const topicName = z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'a Kafka topic name ([A-Za-z0-9._-], at most 249 characters)');

/** `log: { type: kafka, ... }`: Kafka topics, for several machines and consumer groups. */
export const kafkaLogConfig = z.strictObject({
  type: z.literal('kafka'),
  brokers: z.array(z.string().regex(/^[^\s:]+:\d+$/, 'HOST:PORT')).min(1),
  /** The one topic every table goes to (default <service.name>.changes). */
  topic: topicName.optional(),
  /** One topic per table instead, named <topicPrefix><schema>.<table>. */
  topicPerTable: z.boolean().default(false),
  /** Default <service.name>. */
  topicPrefix: z.string().regex(/^[A-Za-z0-9._-]*$/, 'topic name characters [A-Za-z0-9._-]').optional(),
  /** Partitions each topic must have; rows are hashed to them. */
  partitions: z.number().int().min(1).max(10_000).default(8),
  clientId: z.string().min(1).default('tidewater'),
  /** Sink workers join consumer group <consumerGroupPrefix>sink-<name> (default prefix <service.name>.). */
  consumerGroupPrefix: z.string().optional(),
  /** A sink worker that sends no heartbeat this long is dropped and its partitions move to the others. */
  sessionTimeoutMs: z.number().int().min(3000).max(300_000).default(30_000),
  /** Idempotent producer (exactly one copy of each appended batch even when the producer retries). */
  idempotent: z.boolean().default(true),
  /** After each delete, a tombstone (null value) so a compacted topic can drop the row after delete.retention.ms. */
  tombstones: z.boolean().default(true),
  /**
   * native: the log's own topics only. debezium: also one topic per table with
   * Debezium's message values (JsonConverter, schemas.enable=false), for
   * existing Debezium consumers; the sinks keep reading the native topics.
   */
  format: z.enum(['native', 'debezium']).default('native'),
  debezium: z
    .strictObject({
      /** Debezium topics are <topicPrefix><schema>.<table>; default <source name>. (Debezium's <topic.prefix>.<schema>.<table>). */
      topicPrefix: z.string().regex(/^[A-Za-z0-9._-]*$/, 'topic name characters [A-Za-z0-9._-]').optional(),
      /** A tombstone (null value) after each delete event, as Debezium's tombstones.on.delete. */
      tombstones: z.boolean().default(true),
      /** Debezium's decimal.handling.mode: precise (base64 of the unscaled bytes), string, or double. */
      decimalHandling: z.enum(['precise', 'string', 'double']).default('precise'),
    })
    .default({ tombstones: true, decimalHandling: 'precise' }),
  /** Creates missing topics at start (like Kafka Connect's topic.creation.*); without it a missing topic stops the service with the command that creates it. */
  createTopics: z
    .strictObject({
      /** Partitions of a created Debezium topic (default log.partitions); the log's own topics always get log.partitions. */
      partitions: z.number().int().min(1).max(10_000).optional(),
      /** Default: the smaller of 3 and the number of brokers. */
      replicationFactor: z.number().int().min(1).max(32).optional(),
      /** Topic configs, e.g. { "cleanup.policy": compact, "min.insync.replicas": "2" }; default cleanup.policy=compact. */
      config: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
    })
    .optional(),
  /** TLS to the brokers: file paths of PEM files (or the PEM text itself). `ssl: true` trusts the system CAs. */
  ssl: z
    .union([
      z.literal(true),
      z.strictObject({
        ca: z.string().min(1).optional(),
        cert: z.string().min(1).optional(),
        key: z.string().min(1).optional(),
        /** Checked against the broker's certificate; default the host of each broker address. */
        servername: z.string().optional(),
      }),
    ])
    .optional(),
  /** SASL authentication (over ssl in production: PLAIN sends the password as is). */
  sasl: z
    .strictObject({
      mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
      username: z.string().min(1),
      password: z.string(),
    })
    .optional(),
}).superRefine((config, ctx) => {
  if (config.format === 'debezium' && config.topicPerTable && config.debezium.topicPrefix !== undefined) {
    const native = config.topicPrefix;
    const debezium = config.debezium.topicPrefix;
    if (native === undefined || native.startsWith(debezium) || debezium.startsWith(native)) {
      ctx.addIssue({
        code: 'custom',
        path: ['debezium', 'topicPrefix'],
        message: `with topicPerTable the log reads every topic under topicPrefix; give the Debezium topics a prefix that neither contains nor is contained in it (set both log.topicPrefix and log.debezium.topicPrefix)`,
      });
    }
  }
  const created = config.createTopics?.partitions;
  if (created !== undefined && created !== config.partitions && config.format !== 'debezium') {
    ctx.addIssue({ code: 'custom', path: ['createTopics', 'partitions'], message: `the log's own topics always get log.partitions (${config.partitions}); createTopics.partitions is for Debezium topics (format: debezium): remove it or set it to ${config.partitions}` });
  }
});

export const logConfig = z.discriminatedUnion('type', [embeddedLogConfig, kafkaLogConfig]);

export type EmbeddedLogConfig = z.infer<typeof embeddedLogConfig>;
export type KafkaLogConfig = z.infer<typeof kafkaLogConfig>;
export type LogConfig = z.infer<typeof logConfig>;

export const logTypes = ['embedded', 'kafka'];
