// Moves a throwaway Postgres cluster's WAL position far ahead (pg_resetwal -l),
// to test positions a long-lived production cluster reaches (above 2^43).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ensureBinary } from './ensure-binary';
import { PgServer } from './postgres';
import { run, serviceUser } from './proc';
import { waitFor } from './wait';

/** WAL segment 0x1000/0 of timeline 1: LSN 1000/00000000 = 2^44. */
export const SEGMENT_ABOVE_2_POW_43 = '000000010000100000000000';

/** Stops the cluster cleanly (fast shutdown, data kept), sets the next WAL segment, starts it again. */
export async function resetWalAbove(pg: PgServer, segment = SEGMENT_ABOVE_2_POW_43): Promise<void> {
  const initdb = ensureBinary(['initdb'], 'postgresql');
  const resetwal = path.join(path.dirname(fs.realpathSync(initdb)), 'pg_resetwal');
  const pid = pg.pid;
  if (pid === undefined) throw new Error('resetWalAbove: the cluster is not running');
  process.kill(pid, 'SIGINT');
  await waitFor(() => pg.pid === undefined, { timeoutMs: 30_000, what: `postgres ${pid} to shut down` });
  await run(resetwal, ['-l', segment, pg.dataDir], { runAs: serviceUser('postgres'), cwd: pg.dir });
  await pg.start();
}
