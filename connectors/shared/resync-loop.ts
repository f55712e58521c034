import { Backoff, sleep } from '../../core/runtime/backoff';
import { Logger } from '../../core/runtime/logger';

interface Coordinator {
  run(signal: AbortSignal): Promise<void>;
  /** Removes the task in progress; returns it. */
  dropCurrent(): { table: string; requestId: string } | undefined;
}

/**
 * Runs a source's queued resync tasks until the stream stops. A task whose
 * request is wrong (`isRequestError`, e.g. a bad WHERE) is dropped with a
 * message saying so; any other failure is retried with backoff.
 */
export async function runResyncTasks(coordinator: Coordinator, signal: AbortSignal, logger: Logger, isRequestError: (error: Error) => boolean): Promise<void> {
  const backoff = new Backoff();
  while (!signal.aborted) {
    try {
      return await coordinator.run(signal);
    } catch (error) {
      if (signal.aborted) return;
      if (isRequestError(error as Error)) {
        const dropped = coordinator.dropCurrent();
        logger.error(`${(error as Error).message}; this resync task is dropped: fix the request and ask again`, { table: dropped?.table, requestId: dropped?.requestId });
        continue;
      }
      const delayMs = backoff.nextDelayMs();
      logger.error(`resync: ${(error as Error).message}; retrying`, { inMs: delayMs });
      await sleep(delayMs, signal);
    }
  }
}
