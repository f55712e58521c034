/**
 * One connection attempt of a component (a source's stream, say). It ends at
 * the first failure of any connection it holds, or when the outer signal
 * aborts; every loop, timer and connection of the attempt watches `signal`,
 * so nothing outlives it. The first failure is the one reported: later
 * errors are usually its consequences ("Client ... is not queryable").
 */
export interface AttemptOptions {
  /**
   * How long the body and its background work may take to stop once the
   * attempt has ended (default 15 s). Past it they are abandoned, so one
   * await that never settles (a driver that leaves a query pending on a
   * destroyed connection, say) cannot hold the component from reconnecting.
   */
  stopGraceMs?: number;
  /** Told when something was abandoned, naming it, so the leak is never silent. */
  onAbandoned?(what: string): void;
}

export class Attempt {
  private readonly controller = new AbortController();
  private failure: Error | null = null;
  private readonly onOuterAbort = () => this.controller.abort();

  constructor(private readonly outer: AbortSignal, private readonly options: AttemptOptions = {}) {
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
      await this.settledOrAbandoned(body(), 'the attempt\'s main loop');
      if (!this.outer.aborted) this.fail(new Error('the stream ended unexpectedly'));
    } catch (error) {
      this.fail(error as Error);
    } finally {
      this.controller.abort();
      this.outer.removeEventListener('abort', this.onOuterAbort);
      await this.settledOrAbandoned(cleanup(), 'the attempt\'s background work').catch(() => undefined);
    }
    if (this.failure && !this.outer.aborted) throw this.failure;
  }

  /** `work`, or, once the attempt has ended and `stopGraceMs` passed without it settling, nothing (it is abandoned, and said so). */
  private async settledOrAbandoned(work: Promise<void>, what: string): Promise<void> {
    const graceMs = this.options.stopGraceMs ?? 15_000;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const abandoned = new Promise<'abandoned'>((resolve) => {
      onAbort = () => (timer = setTimeout(() => resolve('abandoned'), graceMs));
      if (this.controller.signal.aborted) onAbort();
      else this.controller.signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const outcome = await Promise.race([work.then(() => 'settled' as const), abandoned]);
      if (outcome === 'abandoned') {
        work.catch(() => undefined);
        this.options.onAbandoned?.(`${what} did not stop within ${Math.round(graceMs / 1000)} s of the attempt ending${this.failure ? ` (${this.failure.message})` : ''}: abandoned, reconnecting anyway`);
      }
    } finally {
      clearTimeout(timer);
      if (onAbort) this.controller.signal.removeEventListener('abort', onAbort);
    }
  }
}

/**
 * `work`, unless `signal` aborts first: then a rejection at once (the attempt
 * has ended; the failure it reports is its first one, not this). `work` keeps
 * running unobserved: `onLate` receives its value if it still arrives (to
 * close a connection that opened too late, say), and its failure is ignored.
 * For awaits whose own connection the abort does not end.
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal, onLate?: (value: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      work.then((value) => onLate?.(value), () => undefined);
      reject(new Error('the attempt ended', { cause: signal.reason }));
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
