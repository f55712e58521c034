import { sleep } from './backoff';

/** How often a waiting step looks at the lag again. */
const YIELD_STEP_MS = 250;

/**
 * Background work (a rebuild's batch, a resync's chunk) waits while `lagging()`
 * holds: it shares the CPU, and sometimes the database, with the work readers
 * see. At most `maxMs`, so the background work always moves on. Resolves
 * whether it waited.
 */
export async function yieldWhileLagging(lagging: () => boolean, signal: AbortSignal, maxMs: number): Promise<boolean> {
  const deadline = Date.now() + maxMs;
  let waited = false;
  while (!signal.aborted && Date.now() < deadline && lagging()) {
    waited = true;
    await sleep(YIELD_STEP_MS, signal);
  }
  return waited;
}
