// One import for tests, the demo and benchmarks: every throwaway-server starter plus stopAll().
//
// Every started server is tracked. Call stopAll() from a mocha `after` hook; if a run dies
// anyway, a process 'exit' hook (and SIGINT/SIGTERM/SIGHUP when nobody else handles them)
// SIGKILLs any child PID we started that is still running and removes the temp dirs.
import { trackedServers } from './proc';

export { freePort } from './free-port';
export { ensureBinary, findBinary } from './ensure-binary';
export { startPostgres } from './postgres';
export type { PgServer, PgOptions } from './postgres';
export { startMariadb, mariadbQuery } from './mariadb';
export type { MariadbServer } from './mariadb';
export { startRedis, redisRaw } from './redis';
export type { RedisServer } from './redis';
export { startKafkaMock } from './kafka';
export type { KafkaMock, KafkaMockOptions } from './kafka';

/** Stops every server started in this process that is not stopped yet (in parallel). */
export async function stopAll(): Promise<void> {
  const results = await Promise.allSettled(trackedServers().map((s) => s.stop()));
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length) {
    throw new Error(`stopAll: ${failed.length} server(s) failed to stop: ${failed.map((f) => String(f.reason?.message ?? f.reason)).join('; ')}`);
  }
}
