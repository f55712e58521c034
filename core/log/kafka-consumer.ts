import { Batch, Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { ChangeEvent } from '../event/change-event';
import { Backoff, sleep } from '../runtime/backoff';
import { Logger } from '../runtime/logger';
import { ConsumeOptions, LogRecord } from './change-log';
import { eventOf, isTombstoneOf } from './kafka-codec';

export interface GroupConsumerSettings {
  groupId: string;
  topics: string[];
  partitions: number;
  sessionTimeoutMs: number;
  /** Start offsets from the sink only make sense when partition numbers name one topic's partitions. */
  singleTopic: boolean;
  logger?: Logger;
}

/**
 * consume() for the Kafka log: the processes running a sink form one consumer
 * group, so Kafka spreads the partitions over them and moves a dead worker's
 * partitions to the others after its session times out. Offsets are
 * committed after each handled batch (so after the sink's flush); a new group
 * starts from the earliest offset, which is a replay from zero.
 */
export async function consumeGroup(kafka: Kafka, settings: GroupConsumerSettings, options: ConsumeOptions): Promise<void> {
  const backoff = new Backoff(1000);
  while (!options.signal.aborted) {
    try {
      return await runSession(kafka, settings, options);
    } catch (error) {
      if (error instanceof HandlerFailure) throw error.cause;
      // kafkajs gives up on errors it deems fatal (the mock cluster refuses some SyncGroups mid-rebalance):
      // a sink worker keeps trying with a fresh consumer, and the sink stays open meanwhile.
      const delayMs = backoff.nextDelayMs();
      settings.logger?.warn(`${(error as Error).message}; starting a new consumer`, { inMs: delayMs });
      await sleep(delayMs, options.signal);
    }
  }
}

/** One consumer's membership, until the signal aborts (resolves) or kafkajs gives up (rejects). */
async function runSession(kafka: Kafka, settings: GroupConsumerSettings, options: ConsumeOptions): Promise<void> {
  const { signal } = options;
  const maxBatch = options.maxBatch ?? 1000;
  const consumer = kafka.consumer({
    groupId: settings.groupId,
    sessionTimeout: settings.sessionTimeoutMs,
    heartbeatInterval: Math.min(3000, Math.floor(settings.sessionTimeoutMs / 3)),
    // Short fetch waits keep stop() quick; an idle partition costs a few fetches per second.
    maxWaitTimeInMs: 500,
    allowAutoTopicCreation: false,
  });
  /** Settles once the sink's start offsets of the current assignment are known and their seeks registered. */
  let seeking: Promise<void> = Promise.resolve();
  /** Per "topic:partition": the last event handed over, to drop the tombstone repeating a delete. */
  const lastEvent = new Map<string, ChangeEvent>();

  let fail: (error: Error) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => undefined);
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (!payload.restart) fail(new Error(`kafka log: consumer group ${settings.groupId} stopped: ${payload.error.message}`));
  });
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    const assigned = Object.entries(payload.memberAssignment).flatMap(([topic, ps]) => ps.map((p) => ({ topic, partition: p })));
    const partitions = [...new Set(assigned.map((a) => a.partition))].sort((a, b) => a - b);
    settings.logger?.info(`consumer group ${settings.groupId}: assigned ${assigned.map((a) => `${a.topic}:${a.partition}`).join(', ') || 'nothing'}`);
    lastEvent.clear();
    options.onAssign?.(partitions);
    if (!options.startOffsets) return;
    if (!settings.singleTopic) {
      settings.logger?.warn(`consumer group ${settings.groupId}: the sink stores offsets, but with a topic per table they cannot name a topic; resuming from the group's committed offsets`);
      return;
    }
    // kafkajs drops fetched data of a partition with a pending seek (the batch is "stale"), so nothing before the start is handed over.
    seeking = options.startOffsets(partitions).then((stored) => {
      for (const a of assigned) {
        const start = stored?.get(a.partition);
        if (start !== undefined) consumer.seek({ topic: a.topic, partition: a.partition, offset: String(start) });
      }
    });
  });

  const handleBatch = async ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload) => {
    await seeking;
    if (!isRunning() || isStale() || signal.aborted) return;
    const records = decode(batch, lastEvent);
    const batchEnd = Number(batch.lastOffset()) + 1;
    // Heartbeats keep the membership while a slow sink works through a batch.
    const beat = setInterval(() => void heartbeat().catch(() => undefined), Math.min(3000, settings.sessionTimeoutMs / 3));
    try {
      for (let i = 0; i < records.length || i === 0; i += maxBatch) {
        const chunk = records.slice(i, i + maxBatch);
        const nextOffset = i + maxBatch >= records.length ? batchEnd : chunk[chunk.length - 1].offset + 1;
        if (chunk.length > 0) {
          try {
            await options.handle({ partition: batch.partition, topic: batch.topic, records: chunk, nextOffset });
          } catch (error) {
            fail(new HandlerFailure(error));
            return;
          }
        }
        if (signal.aborted || !isRunning() || isStale()) return;
        resolveOffset(String(nextOffset - 1));
        await commit(consumer, settings, batch.topic, batch.partition, nextOffset);
      }
    } finally {
      clearInterval(beat);
    }
    await heartbeat().catch(() => undefined);
  };

  await consumer.connect();
  try {
    await consumer.subscribe({ topics: settings.topics, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: Math.max(1, Math.min(settings.partitions, 8)),
      eachBatch: handleBatch,
    });
    let onAbort = () => undefined as void;
    const aborted = new Promise<void>((resolve) => (onAbort = resolve));
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await Promise.race([aborted, failed]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
}

/** The handler's own error: it ends consume() instead of restarting the consumer. */
class HandlerFailure extends Error {
  constructor(override readonly cause: unknown) {
    super(`the batch handler failed: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

function key(topic: string, partition: number): string {
  return `${topic}:${partition}`;
}

function decode(batch: Batch, lastEvent: Map<string, ChangeEvent>): LogRecord[] {
  const id = key(batch.topic, batch.partition);
  const records: LogRecord[] = [];
  for (const message of batch.messages) {
    const offset = Number(message.offset);
    const event = eventOf(message, batch.topic, batch.partition);
    if (!event || isTombstoneOf(message, event, lastEvent.get(id))) continue;
    lastEvent.set(id, event);
    records.push({ partition: batch.partition, offset, event, topic: batch.topic });
  }
  return records;
}

/** Commits after a handled batch; a rebalance may have moved the partition, and then its new owner replays it. */
async function commit(consumer: Consumer, settings: GroupConsumerSettings, topic: string, partition: number, offset: number): Promise<void> {
  try {
    await consumer.commitOffsets([{ topic, partition, offset: String(offset) }]);
  } catch (error) {
    settings.logger?.warn(
      `consumer group ${settings.groupId}: committing ${topic}:${partition} offset ${offset} failed (${(error as Error).message}); ` +
        `the partition's next owner replays from the last committed offset, which the sink's version guard makes harmless`,
    );
  }
}
