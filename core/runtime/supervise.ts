import { Backoff, sleep } from './backoff';
import { Logger } from './logger';

/**
 * Runs a component until the signal aborts: an unexpected failure is logged
 * at once and the component restarts after a backoff, so one broken part
 * never dies silently while the rest keeps running.
 */
export async function supervise(what: string, run: () => Promise<void>, signal: AbortSignal, logger: Logger): Promise<void> {
  const backoff = new Backoff(1000);
  while (!signal.aborted) {
    try {
      await run();
      return;
    } catch (error) {
      if (signal.aborted) return;
      const delayMs = backoff.nextDelayMs();
      logger.error(`${what} failed: ${(error as Error).stack ?? (error as Error).message}; restarting`, { inMs: delayMs });
      await sleep(delayMs, signal);
    }
  }
}

/** An AbortController that also aborts when `parent` does (stops one component without stopping the service). */
export function childController(parent: AbortSignal): AbortController {
  const controller = new AbortController();
  if (parent.aborted) controller.abort();
  else parent.addEventListener('abort', () => controller.abort(), { once: true });
  return controller;
}
