// A throwaway Postgres restored from a base backup of another one (same system
// identifier): pg_basebackup, then started with recovery.signal so that, once
// the backup's WAL is replayed, it is promoted onto a new timeline, as a
// point-in-time restore or a failover to a standby would be.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ChildProcess } from 'node:child_process';
import { Client } from 'pg';
import { ensureBinary } from './ensure-binary';
import { freePort } from './free-port';
import { PgServer } from './postgres';
import { isRunning, makeTempDir, removeDir, run, serviceUser, spawnLogged, stopGracefully, trackServer, untrackServer, waitReady } from './proc';

export interface RestoredPg {
  url: string;
  port: number;
  /** Starts the restored copy (replays the backup, promotes to a new timeline). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Takes a base backup of `source` now; start() later runs it as a server of its own. */
export async function baseBackup(source: PgServer): Promise<RestoredPg> {
  const initdb = ensureBinary(['initdb'], 'postgresql');
  const binDir = path.dirname(fs.realpathSync(initdb));
  const runAs = serviceUser('postgres');
  const dir = makeTempDir('pg-restored', runAs);
  const dataDir = path.join(dir, 'data');
  await run(path.join(binDir, 'pg_basebackup'), ['-h', '127.0.0.1', '-p', String(source.port), '-U', 'postgres', '-D', dataDir, '-X', 'stream', '--checkpoint=fast', '--no-sync'], { runAs, cwd: dir });
  const port = await freePort();
  const logFile = path.join(dir, 'postgres.log');
  let child: ChildProcess | undefined;
  const server: RestoredPg = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async start() {
      const signal = path.join(dataDir, 'recovery.signal');
      fs.writeFileSync(signal, '');
      if (runAs) fs.chownSync(signal, runAs.uid, runAs.gid);
      // restore_command 'false': nothing archived; recovery ends at the end of the backup's own WAL and promotes.
      child = spawnLogged(path.join(binDir, 'postgres'), ['-D', dataDir, '-c', `port=${port}`, '-c', `unix_socket_directories=${dir}`, '-c', 'restore_command=false'], { logFile, runAs, cwd: dir });
      await waitReady(async () => {
        const c = new Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 2000 });
        c.on('error', () => undefined);
        try {
          await c.connect();
          const { rows } = await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
          return !rows[0].r;
        } finally {
          await c.end().catch(() => undefined);
        }
      }, { child, what: `the restored postgres on 127.0.0.1:${port}`, logFile, timeoutMs: 60_000 });
      trackServer(server);
    },
    async stop() {
      await stopGracefully(isRunning(child) ? child : undefined, 'SIGINT', 30_000, 'postgres');
      removeDir(dir);
      untrackServer(server);
    },
  };
  return server;
}
