// A throwaway Kafka: librdkafka's in-process mock cluster, run by a tiny C helper
// (test/support/kafka-mock.c) compiled on first use and cached by source hash.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ChildProcess } from 'node:child_process';
import { aptInstall, ensureBinary, isRoot } from './ensure-binary';
import {
  isRunning, makeTempDir, removeDir, run, spawnLogged, stopGracefully, tail, trackServer, untrackServer,
} from './proc';

export interface KafkaMock {
  /** host:port of each mock broker, all on 127.0.0.1 */
  brokers: string[];
  /** brokers joined with ',' (bootstrap.servers) */
  bootstrap: string;
  readonly pid: number | undefined;
  dir: string;
  stop(): Promise<void>;
}

export interface KafkaMockOptions {
  brokers?: number;
  topics: { name: string; partitions: number }[];
}

const MOCK_HEADER = '/usr/include/librdkafka/rdkafka_mock.h';

/** The repo root: the nearest ancestor of this file (src or dist) holding package.json. */
export function packageRoot(from = __dirname): string {
  for (let d = from; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'package.json'))) return d;
    if (path.dirname(d) === d) throw new Error(`no package.json above ${from}: run from inside the tidewater checkout`);
  }
}

/** Path of the compiled helper, building it (and installing its Debian deps as root) if needed. */
export async function kafkaMockBinary(): Promise<string> {
  const root = packageRoot();
  const src = path.join(root, 'test', 'support', 'kafka-mock.c');
  if (!fs.existsSync(src)) throw new Error(`${src} is missing: the Kafka mock helper source must be in the checkout`);
  const hash = crypto.createHash('sha256').update(fs.readFileSync(src)).digest('hex').slice(0, 16);
  const cacheDir = path.join(root, 'node_modules', '.cache', 'tidewater');
  const bin = path.join(cacheDir, `kafka-mock-${hash}`);
  if (fs.existsSync(bin)) return bin;

  if (!fs.existsSync(MOCK_HEADER)) {
    const hint = 'install the Debian package librdkafka-dev (apt-get install -y librdkafka-dev)';
    if (!isRoot()) throw new Error(`${MOCK_HEADER} not found: ${hint}`);
    aptInstall('librdkafka-dev');
    if (!fs.existsSync(MOCK_HEADER)) throw new Error(`${MOCK_HEADER} still missing after installing librdkafka-dev: this librdkafka is too old for the mock cluster API`);
  }
  const cc = ensureBinary(['cc', 'gcc'], 'build-essential');
  fs.mkdirSync(cacheDir, { recursive: true });
  // Compile to a private name, then rename: concurrent test processes never see half a binary.
  const tmp = `${bin}.${process.pid}.tmp`;
  try {
    await run(cc, ['-O2', '-o', tmp, src, '-lrdkafka']);
    fs.renameSync(tmp, bin);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new Error(`compiling the Kafka mock helper failed; check that librdkafka-dev and build-essential are installed.\n${(err as Error).message}`);
  }
  return bin;
}

class Mock implements KafkaMock {
  constructor(private readonly child: ChildProcess, readonly dir: string, readonly brokers: string[]) {}

  get bootstrap() { return this.brokers.join(','); }
  get pid() { return isRunning(this.child) ? this.child.pid : undefined; }

  async stop(): Promise<void> {
    this.child.stdin?.end(); // the helper exits when its stdin closes; SIGTERM covers the rest
    await stopGracefully(this.child, 'SIGTERM', 10_000, 'kafka-mock');
    removeDir(this.dir);
    untrackServer(this);
  }
}

/** Reads the helper's first stdout line (the bootstrap servers). */
function firstLine(child: ChildProcess, logFile: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const finish = (err?: Error, line?: string) => {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
      err ? reject(err) : resolve(line!);
    };
    const onData = (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) finish(undefined, buf.slice(0, nl).trim());
    };
    const onExit = () => setTimeout(() => finish(new Error(`kafka-mock exited before printing its bootstrap servers; log ${logFile}:\n${tail(logFile)}`)), 100);
    const timer = setTimeout(() => finish(new Error(`kafka-mock printed no bootstrap servers within ${timeoutMs / 1000} s; log ${logFile}:\n${tail(logFile)}`)), timeoutMs);
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
  });
}

export async function startKafkaMock(opts: KafkaMockOptions): Promise<KafkaMock> {
  const brokerCount = opts.brokers ?? 1;
  for (const t of opts.topics) {
    if (!/^[A-Za-z0-9._-]+$/.test(t.name) || !(t.partitions >= 1)) {
      throw new Error(`invalid Kafka topic ${JSON.stringify(t)}: names use [A-Za-z0-9._-], partitions >= 1`);
    }
  }
  const bin = await kafkaMockBinary();
  const dir = makeTempDir('kafka');
  const logFile = path.join(dir, 'kafka-mock.log');
  const args = [String(brokerCount), ...opts.topics.map((t) => `${t.name}:${t.partitions}`)];
  // stdin is a pipe we hold open: if this process dies, the helper sees EOF and exits.
  const child = spawnLogged(bin, args, { logFile, cwd: dir, stdin: 'pipe', stdout: 'pipe' });
  try {
    // 30 s: on a machine that just booted, the first start of librdkafka took over 10 s once (the fault suite failed to run).
    const brokers = (await firstLine(child, logFile, 30_000)).split(',');
    if (brokers.length !== brokerCount || !brokers.every((b) => /^127\.0\.0\.1:\d+$/.test(b))) {
      throw new Error(`kafka-mock advertised ${brokers.join(',')}, expected ${brokerCount} 127.0.0.1:PORT brokers; check the librdkafka version`);
    }
    child.stdout!.resume(); // nothing more is printed, but never let the pipe fill
    const mock = new Mock(child, dir, brokers);
    trackServer(mock);
    return mock;
  } catch (err) {
    child.stdin?.end();
    await stopGracefully(child, 'SIGTERM', 5000, 'kafka-mock');
    removeDir(dir);
    throw err;
  }
}
