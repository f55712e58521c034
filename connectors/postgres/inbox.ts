/**
 * An ordered queue between a push-based stream and an async handler, with
 * backpressure by water marks: above `high` queued items the producer is
 * paused, below `low` it resumes. Unlike pausing around every item, the
 * producer (the server decoding WAL) keeps working while we process.
 */
export class Inbox<T> {
  private items: T[] = [];
  private head = 0;
  private draining = false;
  private paused = false;
  private failed = false;

  constructor(
    private readonly handle: (item: T) => Promise<void> | void,
    private readonly flow: { pause(): void; resume(): void; onError(error: Error): void },
    private readonly high = 5_000,
    private readonly low = 1_000,
  ) {}

  push(item: T): void {
    if (this.failed) return;
    this.items.push(item);
    if (!this.paused && this.size() > this.high) {
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
        const item = this.items[this.head++];
        const pending = this.handle(item);
        if (pending) await pending;
        if (this.head > 4096) {
          this.items = this.items.slice(this.head); // drop handled items without O(n) shifts per item
          this.head = 0;
        }
        if (this.paused && this.size() < this.low) {
          this.paused = false;
          this.flow.resume();
        }
      }
    } catch (error) {
      this.failed = true;
      this.items = [];
      this.head = 0;
      this.flow.onError(error as Error);
    } finally {
      this.draining = false;
    }
  }
}
