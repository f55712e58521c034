// A private, throwaway Postgres (wal_level=logical) on a free 127.0.0.1 port in a temp dir.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ChildProcess } from 'node:child_process';
import { Client } from 'pg';
import { ensureBinary } from './ensure-binary';
import { freePort } from './free-port';
import {
  EarlyExit, RunAs, isRunning, killHard, makeTempDir, removeDir, run, serviceUser,
  spawnLogged, stopGracefully, trackServer, untrackServer, waitReady,
} from './proc';

export interface PgServer {
  url: string;
  port: number;
  host: string;
  /** PGDATA */
  dataDir: string;
  /** temp dir holding dataDir, the log and the unix socket; removed by stop() */
  dir: string;
  logFile: string;
  /** postmaster PID while running */
  readonly pid: number | undefined;
  /** fast shutdown (SIGINT), then removes the temp dir */
  stop(): Promise<void>;
  /** fast shutdown keeping data, then start again on the same port */
  restart(): Promise<void>;
  /** SIGKILL the postmaster (and its backends); data is kept so start() does crash recovery */
  kill9(): Promise<void>;
  /** start a stopped/killed server again (no-op when running) */
  start(): Promise<void>;
}

export interface PgOptions {
  settings?: Record<string, string>;
  /**
   * TLS on 127.0.0.1 (test/support/tls-ca.ts makes the files): TCP connections
   * must use TLS; with clientCerts they must also present a certificate of
   * `caFile` whose CN is the user. The readiness probe uses the unix socket.
   */
  tls?: { certFile: string; keyFile: string; caFile?: string; clientCerts?: boolean };
}

const START_TIMEOUT_MS = 30_000;
const quote = (v: string) => `'${v.replace(/'/g, "''")}'`;

class Postgres implements PgServer {
  readonly host = '127.0.0.1';
  private child: ChildProcess | undefined;
  private removed = false;

  constructor(
    private readonly bin: string,
    readonly dir: string,
    readonly dataDir: string,
    readonly port: number,
    private readonly runAs: RunAs | undefined,
    private readonly probeOverSocket = false,
  ) {}

  get url() { return `postgres://postgres@${this.host}:${this.port}/postgres`; }
  get logFile() { return path.join(this.dir, 'postgres.log'); }
  get pid() { return isRunning(this.child) ? this.child!.pid : undefined; }

  async start(): Promise<void> {
    if (this.removed) throw new Error(`postgres on port ${this.port} was stopped and its temp dir removed; call startPostgres() for a new one`);
    if (isRunning(this.child)) return;
    // The postgres binary itself (not pg_ctl), so we own the postmaster PID.
    const child = spawnLogged(this.bin, ['-D', this.dataDir], { logFile: this.logFile, runAs: this.runAs, cwd: this.dir });
    this.child = child;
    try {
      await waitReady(() => this.ping(), { child, what: `postgres on 127.0.0.1:${this.port}`, logFile: this.logFile, timeoutMs: START_TIMEOUT_MS });
    } catch (err) {
      await killHard(child, 'postgres');
      throw err;
    }
  }

  private async ping(): Promise<boolean> {
    const c = new Client({ host: this.probeOverSocket ? this.dir : this.host, port: this.port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 2000 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      await c.query('SELECT 1');
      return true;
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  async restart(): Promise<void> {
    await stopGracefully(this.child, 'SIGINT', 30_000, 'postgres');
    await this.start();
  }

  async kill9(): Promise<void> {
    if (this.child) await killHard(this.child, 'postgres');
  }

  async stop(): Promise<void> {
    await stopGracefully(this.child, 'SIGINT', 30_000, 'postgres');
    removeDir(this.dir);
    this.removed = true;
    untrackServer(this);
  }
}

export async function startPostgres(opts: PgOptions = {}): Promise<PgServer> {
  const initdb = ensureBinary(['initdb'], 'postgresql');
  // Use the postgres binary of the same major version as initdb.
  const bin = ensureBinary([path.join(path.dirname(fs.realpathSync(initdb)), 'postgres'), 'postgres'], 'postgresql');
  const runAs = serviceUser('postgres'); // Postgres refuses to run as root
  const dir = makeTempDir('pg', runAs);
  const dataDir = path.join(dir, 'data');
  try {
    await run(initdb, ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C'], { runAs, cwd: dir });
    const tcp = opts.tls ? `hostssl` : 'host';
    const tcpAuth = opts.tls?.clientCerts ? 'cert' : 'trust';
    fs.writeFileSync(path.join(dataDir, 'pg_hba.conf'), [
      'local all all trust',
      `${tcp} all all 127.0.0.1/32 ${tcpAuth}`,
      'local replication all trust',
      `${tcp} replication all 127.0.0.1/32 ${tcpAuth}`,
      '',
    ].join('\n'));
    const tlsSettings: Record<string, string> = {};
    if (opts.tls) {
      const files = [opts.tls.certFile, opts.tls.keyFile, ...(opts.tls.caFile ? [opts.tls.caFile] : [])];
      const [cert, key, ca] = files.map((file) => {
        const copy = path.join(dataDir, `tls-${path.basename(file)}`);
        fs.copyFileSync(file, copy);
        fs.chmodSync(copy, 0o600);
        if (runAs) fs.chownSync(copy, runAs.uid, runAs.gid);
        return copy;
      });
      Object.assign(tlsSettings, { ssl: 'on', ssl_cert_file: cert, ssl_key_file: key }, ca ? { ssl_ca_file: ca } : {});
    }
    const confFile = path.join(dataDir, 'postgresql.conf');
    const baseConf = fs.readFileSync(confFile, 'utf8');
    // freePort() can race with other processes: on "address in use" try a new port.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const settings: Record<string, string> = {
        listen_addresses: '127.0.0.1',
        port: String(port),
        unix_socket_directories: dir,
        wal_level: 'logical',
        max_replication_slots: '20',
        max_wal_senders: '20',
        // fsync stays on: tests kill -9 the server and expect committed data to survive.
        ...tlsSettings,
        ...opts.settings,
      };
      const block = Object.entries(settings).map(([k, v]) => `${k} = ${quote(v)}`).join('\n');
      fs.writeFileSync(confFile, `${baseConf}\n# tidewater throwaway server\n${block}\n`);
      const server = new Postgres(bin, dir, dataDir, port, runAs, opts.tls !== undefined);
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
