import { Admin, Kafka } from 'kafkajs';

/**
 * Sets a consumer group's committed offsets from outside the group (tools,
 * tests). Kafka allows this only while no member of the group runs. The
 * admin API needs DescribeGroups, which librdkafka's mock cluster lacks; there
 * a short-lived member joins the group, commits and leaves. Calls for one
 * group made while such a member is joining are committed together.
 */
export class GroupOffsetSetter {
  private readonly queued = new Map<string, { offsets: Map<number, number>; done: Promise<void> }>();

  constructor(
    private readonly kafka: Kafka,
    private readonly admin: Admin,
    private readonly sessionTimeoutMs: number,
  ) {}

  async set(groupId: string, topic: string, partition: number, offset: number): Promise<void> {
    try {
      await this.admin.setOffsets({ groupId, topic, partitions: [{ partition, offset: String(offset) }] });
    } catch (error) {
      if (!/does not support the requested API/.test((error as Error).message)) {
        throw new Error(`kafka log: cannot set the offsets of consumer group ${groupId}: ${(error as Error).message} (stop every process of the group first)`);
      }
      await this.setAsMember(groupId, topic, partition, offset);
    }
  }

  private setAsMember(groupId: string, topic: string, partition: number, offset: number): Promise<void> {
    const key = `${groupId}\u0000${topic}`;
    const pending = this.queued.get(key);
    if (pending) {
      pending.offsets.set(partition, offset);
      return pending.done;
    }
    const offsets = new Map([[partition, offset]]);
    const done = (async () => {
      const consumer = this.kafka.consumer({ groupId, sessionTimeout: this.sessionTimeoutMs, maxWaitTimeInMs: 200, allowAutoTopicCreation: false });
      await consumer.connect();
      try {
        await consumer.subscribe({ topics: [topic] });
        const joined = new Promise((resolve) => consumer.on(consumer.events.GROUP_JOIN, resolve));
        await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: async () => undefined });
        await joined;
        this.queued.delete(key);
        await consumer.commitOffsets([...offsets].map(([p, o]) => ({ topic, partition: p, offset: String(o) })));
      } finally {
        this.queued.delete(key);
        await consumer.disconnect();
      }
    })();
    this.queued.set(key, { offsets, done });
    return done;
  }
}
