import { STREAM_QUEUE_BYTES } from '../shared/transaction-parts';

/**
 * An ordered queue between a push-based stream and an async handler, with
 * backpressure by water marks: above `high` queued items or `highBytes` queued
 * bytes the producer is paused, below `low` items and `lowBytes` it resumes.
 * Unlike pausing around every item, the producer (the server decoding WAL)
 * keeps working while we process. The byte bound keeps rows of megabytes from
 * piling up by the thousand (an item bigger than it is still taken, alone).
 */
export class Inbox<T> {
  /** Queued items from `head` on; handled slots before it are cleared (a handled row of 50 MB must not stay reachable). */
  private items: (T | undefined)[] = [];
  /** Bytes of each queued item, as push() was told (parallel to `items`). */
  private sizes: number[] = [];
  private queuedBytes = 0;
  private head = 0;
  private draining = false;
  private paused = false;
  private failed = false;

  constructor(
    private readonly handle: (item: T) => Promise<void> | void,
    private readonly flow: { pause(): void; resume(): void; onError(error: Error): void },
    private readonly high = 5_000,
    private readonly low = 1_000,
    private readonly highBytes = STREAM_QUEUE_BYTES,
    private readonly lowBytes = highBytes / 4,
  ) {}

  /** Queues `item` of `bytes` (its size on the wire; 0 when unknown: then only the count bounds it). */
  push(item: T, bytes = 0): void {
    if (this.failed) return;
    this.items.push(item);
    this.sizes.push(bytes);
    this.queuedBytes += bytes;
    if (!this.paused && (this.size() > this.high || this.queuedBytes > this.highBytes)) {
      this.paused = true;
      this.flow.pause();
    }
    if (!this.draining) void this.drain();
  }

  size(): number {
    return this.items.length - this.head;
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.head < this.items.length) {
        const item = this.items[this.head] as T;
        this.items[this.head] = undefined;
        this.queuedBytes -= this.sizes[this.head++];
        const pending = this.handle(item);
        if (pending) await pending;
        if (this.head > 4096) {
          this.items = this.items.slice(this.head); // drop handled items without O(n) shifts per item
          this.sizes = this.sizes.slice(this.head);
          this.head = 0;
        }
        if (this.paused && this.size() < this.low && this.queuedBytes < this.lowBytes) {
          this.paused = false;
          this.flow.resume();
        }
      }
    } catch (error) {
      this.failed = true;
      this.items = [];
      this.sizes = [];
      this.queuedBytes = 0;
      this.head = 0;
      this.flow.onError(error as Error);
    } finally {
      this.draining = false;
    }
  }
}
