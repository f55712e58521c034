/**
 * kafkajs has no `auto.offset.reset=none`: when a fetch answers
 * OFFSET_OUT_OF_RANGE (the records were removed by retention) it logs
 * `Offset out of range, resetting to default offset`, jumps to the earliest
 * (fromBeginning) or latest offset, and COMMITS that jump to the group as -2 or
 * -1. The skipped records are then gone for good, and even a restarted process
 * sees a group that looks as if it never committed. That is how a kill -9
 * under load left Redis behind Postgres. This module replaces the reset for
 * the consumer groups that ask (our sinks): kafkajs's recovery calls the
 * group's listener instead, commits nothing, and the consumer session stops
 * with LogOffsetGoneError.
 */

type OutOfRangeListener = (topic: string, partition: number) => void;

const listeners = new Map<string, OutOfRangeListener>();
let installed: boolean | undefined;

interface ConsumerGroupInternals {
  groupId: string;
  preferredReadReplicasPerTopicPartition?: Record<string, Record<number, number | undefined>>;
  recoverFromOffsetOutOfRange(e: { topic: string; partition: number }): Promise<void>;
}

/** Replaces kafkajs's reset for `groupId` until the returned function is called. False when kafkajs's internals are not the expected ones. */
export function refuseOffsetReset(groupId: string, listener: OutOfRangeListener): { active: boolean; release(): void } {
  const active = install();
  if (active) listeners.set(groupId, listener);
  return {
    active,
    release: () => {
      if (listeners.get(groupId) === listener) listeners.delete(groupId);
    },
  };
}

function install(): boolean {
  if (installed !== undefined) return installed;
  installed = false;
  let ConsumerGroup: { prototype: ConsumerGroupInternals } | undefined;
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    ConsumerGroup = require('kafkajs/src/consumer/consumerGroup');
  } catch {
    return false;
  }
  const proto = ConsumerGroup?.prototype;
  const original = proto?.recoverFromOffsetOutOfRange;
  if (!proto || typeof original !== 'function') return false;
  proto.recoverFromOffsetOutOfRange = async function (this: ConsumerGroupInternals, e: { topic: string; partition: number }) {
    const listener = listeners.get(this.groupId);
    const fromFollower = typeof this.preferredReadReplicasPerTopicPartition?.[e.topic]?.[e.partition] === 'number';
    // Out of range on a follower is retried on the leader by kafkajs: no reset there.
    if (!listener || fromFollower) return original.call(this, e);
    listener(e.topic, e.partition);
    // The session is stopping; slow the fetch loop down meanwhile instead of resetting.
    await new Promise((resolve) => setTimeout(resolve, 500));
  };
  installed = true;
  return true;
}
