import { setFlagsFromString } from 'node:v8';

/**
 * V8 sizes the old generation by the machine, not by the live data: after
 * each full collection it lets the heap grow to up to ~4× the live set before
 * collecting again. A CDC service turns over its whole working set every few
 * seconds (events decoded, framed, appended, read back, written to sinks), so
 * with ~45 MB live the heap settles at 170–200 MB of mostly garbage, which is
 * resident memory the operator pays for (the fault suite measured peak RSS
 * 340–410 MB; 300 MB is the limit). Growing the heap by 20 % per collection
 * keeps it near the live set, for a few more full collections per minute
 * (each a few ms at this heap size). `CDC_V8_FLAGS` overrides the flags
 * (e.g. `CDC_V8_FLAGS=" "` to keep V8's defaults).
 */
export const DEFAULT_V8_FLAGS = '--heap-growing-percent=20';

/**
 * V8's young generation (two semi-spaces of up to 16 MB each by default) is
 * sized when the process starts, so it cannot be set from here: the launchers
 * (the `cdc` command's shebang, the Docker image, the systemd unit) start node
 * with this flag. 8 MB halves the young generation: peak RSS of the Postgres
 * source benchmark 239–259 → 172–188 MB, throughput within the runs' noise.
 */
export const YOUNG_GENERATION_FLAG = '--max-semi-space-size=8';

/**
 * glibc gives each thread that allocates its own malloc arena and keeps what
 * DuckDB's and libuv's threads free there; two arenas keep RSS near what is
 * in use. The Docker image and the systemd unit set it.
 */
const MALLOC_ARENAS_ENV = { MALLOC_ARENA_MAX: '2' };

/**
 * Node's arguments and environment as deploy/ starts the service (young
 * generation bounded, two malloc arenas; `env` may override the latter), for
 * a child that stands in for it: the test harness, the benchmarks.
 */
export function asDeployed(args: readonly string[], env: NodeJS.ProcessEnv = process.env): { args: string[]; env: NodeJS.ProcessEnv } {
  return { args: [YOUNG_GENERATION_FLAG, ...args], env: { ...MALLOC_ARENAS_ENV, ...env } };
}

/** Whether node was started with a bounded young generation (command line or NODE_OPTIONS). */
export function youngGenerationBounded(execArgv: readonly string[] = process.execArgv, env: NodeJS.ProcessEnv = process.env): boolean {
  return [...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)].some((arg) => arg.startsWith('--max-semi-space-size'));
}

export function tuneGarbageCollection(env: NodeJS.ProcessEnv = process.env): string {
  const flags = env.CDC_V8_FLAGS ?? DEFAULT_V8_FLAGS;
  if (flags.trim()) setFlagsFromString(flags);
  return flags.trim();
}
