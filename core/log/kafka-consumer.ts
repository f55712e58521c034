import { Batch, Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { ChangeEvent } from '../event/change-event';
import { Backoff, sleep } from '../runtime/backoff';
import { Logger } from '../runtime/logger';
import { ConsumeOptions, DEFAULT_MAX_BATCH, LogRecord } from './change-log';
import { eventOf, isTombstoneOf } from './kafka-codec';
import { refuseOffsetReset } from './kafka-offset-reset';
import { LogOffsetGoneError } from './offset-gone';

/** The offsets a partition holds: [low, high). */
export interface HeldRange {
  low: number;
  high: number;
}

export interface GroupConsumerSettings {
  groupId: string;
  topics: string[];
  partitions: number;
  sessionTimeoutMs: number;
  /** Start offsets from the sink only make sense when partition numbers name one topic's partitions. */
  singleTopic: boolean;
  /** Per partition of `topic`, the offsets the brokers still hold. */
  heldOffsets(topic: string): Promise<Map<number, HeldRange>>;
  /** Per partition of `topic`, the group's committed offset (-1 when it never committed). */
  committedOffsets(topic: string): Promise<Map<number, number>>;
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
      if (error instanceof LogOffsetGoneError) throw error;
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
  const maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
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
  /** Per "topic:partition": the offset the next batch must start at (or after, across compaction gaps). */
  const expected = new Map<string, number>();
  /** Per "topic:partition": records fetched (and resolved) but not handed over yet, see handleBatch. */
  const held = new Map<string, { records: LogRecord[]; bytes: number }>();
  /** Set once a partition's next offset is gone: no batch is handed over after that. */
  let gone = false;

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
    expected.clear();
    held.clear(); // never committed: the partition's owner reads them again from the committed offset
    // kafkajs drops fetched data of a partition with a pending seek (the batch is "stale"), so nothing before the start is handed over.
    // The sink counts as assigned (ready) only once every start offset is known to be held.
    seeking = checkStarts(assigned, partitions).then(() => options.onAssign?.(partitions)).catch((error: unknown) => {
      gone = true;
      fail(error as Error);
    });
  });

  /**
   * Where each assigned partition resumes (the sink's stored offset, else the
   * group's commit), refused when the log no longer holds it: kafkajs would
   * log `Offset out of range` and silently jump to the earliest offset.
   */
  const checkStarts = async (assigned: { topic: string; partition: number }[], partitions: number[]) => {
    let stored: ReadonlyMap<number, number> | null = null;
    if (options.startOffsets && settings.singleTopic) stored = await options.startOffsets(partitions);
    else if (options.startOffsets) {
      settings.logger?.warn(`consumer group ${settings.groupId}: the sink stores offsets, but with a topic per table they cannot name a topic; resuming from the group's committed offsets`);
    }
    for (const topic of new Set(assigned.map((a) => a.topic))) {
      const [held, committed] = await Promise.all([settings.heldOffsets(topic), settings.committedOffsets(topic)]);
      for (const a of assigned.filter((x) => x.topic === topic)) {
        const range = held.get(a.partition) ?? { low: 0, high: 0 };
        const fromSink = stored?.get(a.partition);
        const start = fromSink ?? committed.get(a.partition) ?? -1;
        if (start < -1) {
          // -2/-1 committed by kafkajs's reset after an earlier `Offset out of range`: records were skipped then.
          throw new LogOffsetGoneError({
            consumer: options.consumer, topic, partition: a.partition, offset: start, oldest: range.low, end: range.high,
            reason: `is kafkajs's "reset to earliest" marker: an earlier run met \`Offset out of range\` and skipped the records that were removed before it read them`,
          });
        }
        if (start < 0) {
          if (range.low > 0) {
            settings.logger?.warn(
              `consumer group ${settings.groupId}: ${topic}:${a.partition} starts at offset ${range.low}, not 0: ` +
                `offsets below it are gone from the topic, so this new consumer never sees them (use a compacted topic so it keeps every row)`,
            );
          }
          expected.set(key(topic, a.partition), range.low);
          continue;
        }
        if (start < range.low || start > range.high) {
          throw new LogOffsetGoneError({ consumer: options.consumer, topic, partition: a.partition, offset: start, oldest: range.low, end: range.high });
        }
        expected.set(key(topic, a.partition), start);
        if (fromSink === undefined) continue;
        consumer.seek({ topic, partition: a.partition, offset: String(fromSink) });
        // Ahead of the group's commit (a stop between the sink's flush and the commit): the group learns it now,
        // or lag would read the gap until the next record of this partition arrives.
        if (fromSink > (committed.get(a.partition) ?? -1)) await commit(consumer, settings, topic, a.partition, fromSink);
      }
    }
  };

  /** A batch that starts past where this partition should continue: records may have been removed under us. */
  const checkNoGap = async (batch: Batch) => {
    const id = key(batch.topic, batch.partition);
    const want = expected.get(id);
    const first = batch.messages.length > 0 ? Number(batch.messages[0].offset) : undefined;
    if (want === undefined || first === undefined || first <= want) return;
    // Compaction leaves gaps but never moves the log start offset; retention does.
    const range = (await settings.heldOffsets(batch.topic)).get(batch.partition) ?? { low: 0, high: 0 };
    if (range.low > want) {
      throw new LogOffsetGoneError({ consumer: options.consumer, topic: batch.topic, partition: batch.partition, offset: want, oldest: range.low, end: range.high });
    }
  };

  const handleBatch = async ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload) => {
    await seeking;
    const id = key(batch.topic, batch.partition);
    if (gone || !isRunning() || isStale() || signal.aborted) {
      held.delete(id);
      return;
    }
    try {
      await checkNoGap(batch);
    } catch (error) {
      gone = true;
      fail(error as Error);
      return;
    }
    const batchEnd = Number(batch.lastOffset()) + 1;
    const before = held.get(id);
    const fresh = decode(batch, lastEvent);
    // Appended in place: a backlog of one-record fetches must not copy the held records again at every fetch.
    if (before) for (const record of fresh) before.records.push(record);
    const records = before ? before.records : fresh;
    const bytes = (before?.bytes ?? 0) + messageBytes(batch);
    // A fetch may return a single producer batch per partition (librdkafka's mock cluster always does; a broker
    // does for a small fetch size): a backlog would then reach the sink a few records at a time, one flush each,
    // slower than it grows. While the log holds more, fetch on and hand the records over together (bounded by
    // maxBatch and bytes). Resolving moves only the fetch position: commits still follow the sink's flush.
    if (batch.messages.length > 0 && Number(batch.highWatermark) > batchEnd && records.length < maxBatch && bytes < HOLD_MAX_BYTES) {
      held.set(id, { records, bytes });
      resolveOffset(batch.lastOffset());
      expected.set(id, batchEnd);
      return;
    }
    held.delete(id);
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
        // Records held from earlier fetches are resolved already: never move the fetch position back.
        if (nextOffset > (expected.get(id) ?? -1)) {
          resolveOffset(String(nextOffset - 1));
          expected.set(id, nextOffset);
        }
        await commit(consumer, settings, batch.topic, batch.partition, nextOffset);
      }
    } finally {
      clearInterval(beat);
    }
    await heartbeat().catch(() => undefined);
  };

  // kafkajs would answer OFFSET_OUT_OF_RANGE by jumping to the earliest offset and committing the jump.
  const refusal = refuseOffsetReset(settings.groupId, (topic, partition) => {
    if (gone) return;
    gone = true;
    void (async () => {
      const range = (await settings.heldOffsets(topic).catch(() => undefined))?.get(partition);
      const offset = expected.get(key(topic, partition)) ?? (await settings.committedOffsets(topic).catch(() => undefined))?.get(partition) ?? -1;
      fail(new LogOffsetGoneError({ consumer: options.consumer, topic, partition, offset, oldest: range?.low ?? -1, end: range?.high }));
    })();
  });
  if (!refusal.active) {
    settings.logger?.warn(
      `consumer group ${settings.groupId}: cannot turn off kafkajs's reset to the earliest offset after \`Offset out of range\` (its internals changed); ` +
        `a gap is still detected before a batch is applied, but the group's committed offset may already be reset`,
    );
  }
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
    // Released only once kafkajs has stopped fetching: a fetch still in flight must not reset and commit either.
    await consumer.disconnect().catch(() => undefined);
    refusal.release();
  }
}

/** The handler's own error: it ends consume() instead of restarting the consumer. */
class HandlerFailure extends Error {
  constructor(override readonly cause: unknown) {
    super(`the batch handler failed: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

/** Fetched bytes held back for one partition at most (a record bigger than this is handed over at once). */
const HOLD_MAX_BYTES = 8 * 1024 * 1024;

function messageBytes(batch: Batch): number {
  let bytes = 0;
  for (const message of batch.messages) bytes += (message.value?.length ?? 0) + (message.key?.length ?? 0);
  return bytes;
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
