/**
 * One connection attempt of a component (a source's stream, say). It ends at
 * the first failure of any connection it holds, or when the outer signal
 * aborts; every loop, timer and connection of the attempt watches `signal`,
 * so nothing outlives it. The first failure is the one reported: later
 * errors are usually its consequences ("Client ... is not queryable").
 */
export class Attempt {
  private readonly controller = new AbortController();
  private failure: Error | null = null;
  private readonly onOuterAbort = () => this.controller.abort();

  constructor(private readonly outer: AbortSignal) {
    if (outer.aborted) this.controller.abort();
    else outer.addEventListener('abort', this.onOuterAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Ends the attempt with `error` (ignored once it has ended). */
  fail(error: Error): void {
    if (this.controller.signal.aborted) return;
    this.failure = error;
    this.controller.abort(error);
  }

  /** The failure that ended the attempt; null when it stopped because the outer signal aborted, or still runs. */
  get failed(): Error | null {
    return this.failure;
  }

  /**
   * Runs the attempt's body. However the body ends, the attempt ends with it;
   * then `cleanup` awaits what ran in the background. Resolves on a clean stop
   * (outer signal), rejects with the first failure otherwise.
   */
  async run(body: () => Promise<void>, cleanup: () => Promise<void> = async () => undefined): Promise<void> {
    try {
      await body();
      if (!this.outer.aborted) this.fail(new Error('the stream ended unexpectedly'));
    } catch (error) {
      this.fail(error as Error);
    } finally {
      this.controller.abort();
      this.outer.removeEventListener('abort', this.onOuterAbort);
      await cleanup().catch(() => undefined);
    }
    if (this.failure && !this.outer.aborted) throw this.failure;
  }
}
