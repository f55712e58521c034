/** Polls `check` until it returns true; on timeout throws with `describe()`'s account of what differs. */
export async function waitFor(
  check: () => Promise<boolean> | boolean,
  options: { timeoutMs: number; what: string; intervalMs?: number; describe?: () => Promise<string> | string },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50));
  }
  const detail = options.describe ? `: ${await options.describe()}` : '';
  throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what}${detail}`);
}
