/** A reply of a pipelined command, as ioredis gives it: the command's error or its result. */
export type Reply = [Error | null, unknown];

interface Sender<P> {
  queue(pipeline: P): void;
  commands: number;
  resolve(replies: Reply[]): void;
  reject(error: unknown): void;
}

/** Senders of at most this many commands share pipelines; bigger ones are sent at once in their own. */
export const SHARED_UP_TO_COMMANDS = 1;

/**
 * Small batches sent in the same turn of the event loop go to Redis as one pipeline. On the embedded log an
 * append wakes every partition it touched at once, and their batches are read and written together: sent apart,
 * each is a socket write and a reply to read, system calls on our event loop and a wake-up of Redis, which
 * shares the machine. Big batches go alone: joined, each would wait for the replies of all (at 20k changes/s
 * that doubled the latency). Each sender gets the replies of its own commands, errors included, so one sender's
 * failing command never fails another's batch; nothing waits longer than the current turn (setImmediate).
 */
export class SharedPipeline<P extends { exec(): Promise<Reply[] | null> }> {
  private senders: Sender<P>[] = [];

  constructor(private readonly newPipeline: () => P) {}

  /** Queues `commands` commands (by `queue`) on the next pipeline; resolves with their replies, in order. */
  send(queue: (pipeline: P) => void, commands: number): Promise<Reply[]> {
    return new Promise((resolve, reject) => {
      const sender = { queue, commands, resolve, reject };
      if (commands > SHARED_UP_TO_COMMANDS) return void this.sendTogether([sender]);
      if (this.senders.length === 0) setImmediate(() => void this.flush());
      this.senders.push(sender);
    });
  }

  private flush(): Promise<void> {
    const senders = this.senders;
    this.senders = [];
    return this.sendTogether(senders);
  }

  private async sendTogether(senders: Sender<P>[]): Promise<void> {
    let replies: Reply[];
    try {
      const pipeline = this.newPipeline();
      for (const sender of senders) sender.queue(pipeline);
      replies = (await pipeline.exec()) ?? [];
    } catch (error) {
      for (const sender of senders) sender.reject(error);
      return;
    }
    let from = 0;
    for (const sender of senders) {
      sender.resolve(replies.slice(from, from + sender.commands));
      from += sender.commands;
    }
  }
}
