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
});

export const logConfig = z.discriminatedUnion('type', [embeddedLogConfig, kafkaLogConfig]);

export type EmbeddedLogConfig = z.infer<typeof embeddedLogConfig>;
export type KafkaLogConfig = z.infer<typeof kafkaLogConfig>;
export type LogConfig = z.infer<typeof logConfig>;

export const logTypes = ['embedded', 'kafka'];
