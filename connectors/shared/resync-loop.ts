import { Backoff, sleep } from '../../core/runtime/backoff';
import { Logger } from '../../core/runtime/logger';

interface Coordinator {
  run(signal: AbortSignal): Promise<void>;
  /** Removes the task in progress, reporting why; returns it. */
  dropCurrent(reason: string): { table: string; requestId: string } | undefined;
}

/**
 * A resync task that cannot succeed however often it is retried: its request
 * is wrong (a WHERE refused or failing on the data, a table gone). The loop
 * drops it, whatever the source's own predicate says.
 */
export class ResyncRequestError extends Error {}

/**
 * SQLSTATE classes of a statement wrong in itself, not of a connection or
 * server problem: syntax or access (42), data (22, e.g. 22P02 invalid input,
 * 22012 division by zero), cardinality (21).
 */
export function isRequestSqlState(code: unknown): boolean {
  return /^(42|22|21)/.test(String(code ?? ''));
}

/**
 * Runs a source's queued resync tasks until the stream stops. A task whose
 * request is wrong (a ResyncRequestError, or `isRequestError`) is dropped
 * with the error logged and reported (status shows it), so later tasks run;
 * any other failure is retried with backoff.
 */
export async function runResyncTasks(coordinator: Coordinator, signal: AbortSignal, logger: Logger, isRequestError: (error: Error) => boolean): Promise<void> {
  const backoff = new Backoff();
  while (!signal.aborted) {
    try {
      return await coordinator.run(signal);
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof ResyncRequestError || isRequestError(error as Error)) {
        const dropped = coordinator.dropCurrent((error as Error).message);
        logger.error(`${(error as Error).message}; this resync task is dropped: fix the request and ask again`, { table: dropped?.table, requestId: dropped?.requestId });
        continue;
      }
      const delayMs = backoff.nextDelayMs();
      logger.error(`resync: ${(error as Error).message}; retrying`, { inMs: delayMs });
      await sleep(delayMs, signal);
    }
  }
}
