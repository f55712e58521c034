// A private, throwaway Redis (no persistence) on a free 127.0.0.1 port.
import * as net from 'node:net';
import * as path from 'node:path';
import { ChildProcess } from 'node:child_process';
import { ensureBinary } from './ensure-binary';
import { freePort } from './free-port';
import {
  EarlyExit, isRunning, killHard, makeTempDir, removeDir, spawnLogged, stopGracefully,
  trackServer, untrackServer, waitReady,
} from './proc';

export interface RedisServer {
  url: string;
  port: number;
  host: string;
  dir: string;
  logFile: string;
  readonly pid: number | undefined;
  /** With the tls option: the TLS port (rediss://127.0.0.1:<tlsPort>); `port` stays plain text for probes. */
  tlsPort?: number;
  /** SIGTERM, then removes the temp dir */
  stop(): Promise<void>;
  /** SIGKILL; the data set is lost (no persistence), start() brings up an empty server */
  kill9(): Promise<void>;
  start(): Promise<void>;
}

/**
 * Sends raw RESP commands (inline form, e.g. "PING\r\n") and resolves with the reply text
 * once it contains `until`. Dependency-free, for probes and smoke tests.
 */
export function redisRaw(port: number, payload: string, until: RegExp, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    const done = (err?: Error) => { clearTimeout(timer); sock.destroy(); err ? reject(err) : resolve(buf); };
    const timer = setTimeout(() => done(new Error(`redis 127.0.0.1:${port}: no reply matching ${until} within ${timeoutMs} ms (got ${JSON.stringify(buf)})`)), timeoutMs);
    sock.on('connect', () => sock.write(payload));
    sock.on('data', (d) => { buf += d.toString(); if (until.test(buf)) done(); });
    sock.on('error', (e) => done(e));
  });
}

/** TLS on an extra port (Redis 7 tls-port); clientCerts: clients must present a certificate of caFile. */
export interface RedisTlsOptions { certFile: string; keyFile: string; caFile: string; clientCerts?: boolean }

class Redis implements RedisServer {
  readonly host = '127.0.0.1';
  private child: ChildProcess | undefined;
  private removed = false;

  constructor(private readonly bin: string, readonly dir: string, readonly port: number, private readonly tls?: RedisTlsOptions & { port: number }) {}

  get tlsPort() { return this.tls?.port; }

  get url() { return `redis://${this.host}:${this.port}`; }
  get logFile() { return path.join(this.dir, 'redis.log'); }
  get pid() { return isRunning(this.child) ? this.child!.pid : undefined; }

  async start(): Promise<void> {
    if (this.removed) throw new Error(`redis on port ${this.port} was stopped and its temp dir removed; call startRedis() for a new one`);
    if (isRunning(this.child)) return;
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, '--daemonize', 'no'];
    if (this.tls) {
      args.push('--tls-port', String(this.tls.port), '--tls-cert-file', this.tls.certFile, '--tls-key-file', this.tls.keyFile,
        '--tls-ca-cert-file', this.tls.caFile, '--tls-auth-clients', this.tls.clientCerts ? 'yes' : 'no');
    }
    const child = spawnLogged(this.bin, args, { logFile: this.logFile, cwd: this.dir });
    this.child = child;
    try {
      // A restart after `SHUTDOWN SAVE` answers -LOADING until its dump is read back: seconds for millions of keys.
      await waitReady(async () => /^\+PONG/.test(await redisRaw(this.port, 'PING\r\n', /\r\n/)),
        { child, what: `redis-server on 127.0.0.1:${this.port}`, logFile: this.logFile, timeoutMs: 120_000 });
    } catch (err) {
      await killHard(child, 'redis-server');
      throw err;
    }
  }

  async kill9(): Promise<void> {
    if (this.child) await killHard(this.child, 'redis-server');
  }

  async stop(): Promise<void> {
    await stopGracefully(this.child, 'SIGTERM', 30_000, 'redis-server');
    removeDir(this.dir);
    this.removed = true;
    untrackServer(this);
  }
}

export async function startRedis(opts: { tls?: RedisTlsOptions } = {}): Promise<RedisServer> {
  const bin = ensureBinary(['redis-server'], 'redis-server');
  const dir = makeTempDir('redis');
  try {
    // freePort() can race with other processes: on "address in use" try a new port.
    for (let attempt = 1; ; attempt++) {
      const server = new Redis(bin, dir, await freePort(), opts.tls && { ...opts.tls, port: await freePort() });
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
