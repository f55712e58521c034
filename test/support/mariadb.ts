// A private, throwaway MariaDB (ROW binlog, full row images) on a free 127.0.0.1 port.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChildProcess } from 'node:child_process';
import { ensureBinary } from './ensure-binary';
import { freePort } from './free-port';
import {
  EarlyExit, RunAs, isRunning, killHard, makeTempDir, removeDir, run, serviceUser,
  spawnLogged, stopGracefully, trackServer, untrackServer, waitReady,
} from './proc';

export interface MariadbServer {
  url: string;
  port: number;
  host: string;
  dataDir: string;
  /** temp dir holding dataDir, binlogs, logs and the socket; removed by stop() */
  dir: string;
  /** mariadbd's --log-error file */
  logFile: string;
  readonly pid: number | undefined;
  /** graceful shutdown (SIGTERM), then removes the temp dir */
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** SIGKILL mariadbd; data is kept so start() does InnoDB crash recovery */
  kill9(): Promise<void>;
  start(): Promise<void>;
}

const START_TIMEOUT_MS = 60_000;

const client = () => ensureBinary(['mariadb', 'mysql'], 'mariadb-client');

/**
 * Runs SQL through the mariadb CLI as root over TCP (no npm dependency). Returns the
 * tab-separated rows without a header.
 */
export function mariadbQuery(port: number, sql: string, opts: { timeoutMs?: number } = {}): Promise<string> {
  return run(client(), [
    '--no-defaults', '--protocol=TCP', '-h127.0.0.1', `-P${port}`, '-uroot',
    '--connect-timeout=2', '--batch', '--skip-column-names', '-e', sql,
  ], { timeoutMs: opts.timeoutMs ?? 30_000 });
}

/**
 * TLS for clients that ask for it (the root probe over TCP does not); make a
 * user with `REQUIRE SSL` or `REQUIRE X509` to insist. Files are copied into
 * the server's temp dir, readable by the server's OS user.
 */
export interface MariadbTlsOptions { certFile: string; keyFile: string; caFile: string }

class Mariadb implements MariadbServer {
  readonly host = '127.0.0.1';
  private child: ChildProcess | undefined;
  private removed = false;

  constructor(
    private readonly bin: string,
    readonly dir: string,
    readonly port: number,
    private readonly runAs: RunAs | undefined,
    private readonly tlsArgs: string[] = [],
    private readonly serverId = 1,
    private readonly extraArgs: string[] = [],
  ) {}

  get url() { return `mysql://root@${this.host}:${this.port}/`; }
  get dataDir() { return path.join(this.dir, 'data'); }
  get logFile() { return path.join(this.dir, 'error.log'); }
  get pid() { return isRunning(this.child) ? this.child!.pid : undefined; }

  async start(): Promise<void> {
    if (this.removed) throw new Error(`mariadb on port ${this.port} was stopped and its temp dir removed; call startMariadb() for a new one`);
    if (isRunning(this.child)) return;
    const d = this.dir;
    const args = [
      '--no-defaults', // must come first; keeps /etc/mysql/*.cnf of the system server out
      `--datadir=${this.dataDir}`, `--port=${this.port}`, '--bind-address=127.0.0.1',
      `--socket=${d}/mysqld.sock`, `--pid-file=${d}/mysqld.pid`,
      // Its own tmpdir: a mariadbd starting deletes every #sql* file in its tmpdir, another server's temp tables included.
      `--tmpdir=${d}`, `--log-bin=${d}/binlog`, '--binlog-format=ROW', '--binlog-row-image=FULL', '--binlog-row-metadata=FULL',
      `--server-id=${this.serverId}`, `--log-error=${this.logFile}`, '--skip-name-resolve', '--innodb-buffer-pool-size=64M',
      ...(this.runAs ? [`--user=${this.runAs.name}`] : []), // mariadbd drops root privileges itself
      ...this.tlsArgs,
      ...this.extraArgs,
    ];
    const child = spawnLogged(this.bin, args, { logFile: path.join(d, 'stdout.log'), cwd: d });
    this.child = child;
    try {
      await waitReady(async () => (await mariadbQuery(this.port, 'select 1', { timeoutMs: 5000 })).trim() === '1',
        { child, what: `mariadbd on 127.0.0.1:${this.port}`, logFile: this.logFile, timeoutMs: START_TIMEOUT_MS });
    } catch (err) {
      await killHard(child, 'mariadbd');
      throw err;
    }
  }

  async restart(): Promise<void> {
    await stopGracefully(this.child, 'SIGTERM', 60_000, 'mariadbd');
    await this.start();
  }

  async kill9(): Promise<void> {
    if (this.child) await killHard(this.child, 'mariadbd');
  }

  async stop(): Promise<void> {
    await stopGracefully(this.child, 'SIGTERM', 60_000, 'mariadbd');
    removeDir(this.dir);
    this.removed = true;
    untrackServer(this);
  }
}

/** `serverId` (default 1) and `args` (extra mariadbd options, e.g. --log-slave-updates) make replication pairs. */
export async function startMariadb(opts: { tls?: MariadbTlsOptions; serverId?: number; args?: string[] } = {}): Promise<MariadbServer> {
  const installDb = ensureBinary(['mariadb-install-db', 'mysql_install_db'], 'mariadb-server');
  const bin = ensureBinary(['mariadbd', 'mysqld', '/usr/sbin/mariadbd', '/usr/sbin/mysqld'], 'mariadb-server');
  client(); // fail early with a package hint if the CLI used for probing is missing
  const runAs = serviceUser('mysql');
  const dir = makeTempDir('mariadb', runAs);
  try {
    await run(installDb, [
      '--no-defaults', '--auth-root-authentication-method=normal', // root@127.0.0.1 with empty password
      `--datadir=${path.join(dir, 'data')}`, `--user=${runAs?.name ?? os.userInfo().username}`,
      '--skip-test-db', '--skip-name-resolve', `--tmpdir=${dir}`,
    ], { cwd: dir });
    const tlsArgs: string[] = [];
    if (opts.tls) {
      for (const [flag, file] of [['--ssl-cert', opts.tls.certFile], ['--ssl-key', opts.tls.keyFile], ['--ssl-ca', opts.tls.caFile]]) {
        const copy = path.join(dir, `tls-${path.basename(file)}`);
        fs.copyFileSync(file, copy);
        fs.chmodSync(copy, 0o600);
        if (runAs) fs.chownSync(copy, runAs.uid, runAs.gid);
        tlsArgs.push(`${flag}=${copy}`);
      }
    }
    // freePort() can race with other processes: on "address in use" try a new port.
    for (let attempt = 1; ; attempt++) {
      const server = new Mariadb(bin, dir, await freePort(), runAs, tlsArgs, opts.serverId, opts.args);
      try {
        await server.start();
        trackServer(server);
        return server;
      } catch (err) {
        if (!(err instanceof EarlyExit && /already in use/.test(err.message)) || attempt >= 3) throw err;
      }
    }
  } catch (err) {
    removeDir(dir);
    throw err;
  }
}
