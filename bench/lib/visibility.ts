// Where a committed probe row becomes visible, and how long after its commit:
// in Redis (keyspace notifications on the probe keys the sink writes) or in
// the output of pg_recvlogical (the server's decoding alone: the limit).
import { ChildProcess, spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import Redis from 'ioredis';

/** Pairs commit and visibility times per probe; either may be reported first. */
export class LatencyTracker {
  private readonly commits = new Map<number, number>();
  private readonly seen = new Map<number, number>();
  readonly samples: Array<{ committedAt: number; latencyMs: number }> = [];

  committed(probe: number, atMs: number): void {
    const seenAt = this.seen.get(probe);
    if (seenAt === undefined) return void this.commits.set(probe, atMs);
    this.seen.delete(probe);
    this.samples.push({ committedAt: atMs, latencyMs: Math.max(0, seenAt - atMs) });
  }

  visible(probe: number, atMs: number): void {
    const committedAt = this.commits.get(probe);
    if (committedAt === undefined) return void (this.seen.has(probe) || this.seen.set(probe, atMs));
    this.commits.delete(probe);
    this.samples.push({ committedAt, latencyMs: atMs - committedAt });
  }

  /** Probes committed but not seen yet. */
  get pending(): number {
    return this.commits.size;
  }
}

export interface VisibilityReader {
  start(onVisible: (probe: number, atMs: number) => void): Promise<void>;
  stop(): Promise<void>;
}

/** Probe rows as the Redis sink writes them: `<prefix>public.probe:<id>`. */
export class RedisProbeReader implements VisibilityReader {
  private subscriber: Redis | null = null;

  constructor(private readonly url: string, private readonly keyPrefix: string) {}

  async start(onVisible: (probe: number, atMs: number) => void): Promise<void> {
    const admin = new Redis(this.url);
    await admin.config('SET', 'notify-keyspace-events', 'K$'); // keyspace events of string commands (SET)
    admin.disconnect();
    const subscriber = new Redis(this.url);
    this.subscriber = subscriber;
    subscriber.on('pmessage', (_pattern: string, channel: string, message: string) => {
      if (message === 'set') onVisible(Number(channel.slice(channel.lastIndexOf(':') + 1)), performance.now());
    });
    await subscriber.psubscribe(`__keyspace@0__:${this.keyPrefix}public.probe:*`);
  }

  async stop(): Promise<void> {
    this.subscriber?.disconnect();
    this.subscriber = null;
  }
}

/** pg_recvlogical with test_decoding on its own slot: each probe INSERT is one output line. */
export class RecvlogicalProbeReader implements VisibilityReader {
  private child: ChildProcess | null = null;

  constructor(private readonly url: string, private readonly slot: string) {}

  async start(onVisible: (probe: number, atMs: number) => void): Promise<void> {
    const child = spawn('pg_recvlogical', ['-d', this.url, '--slot', this.slot, '--start', '-f', '-', '-o', 'skip-empty-xacts=1', '-o', 'include-xids=0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let err = '';
    child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const probeLine = /^table public\.probe: INSERT: id\[bigint\]:(\d+)/;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = probeLine.exec(line);
      if (match) onVisible(Number(match[1]), performance.now());
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, 300); // no "started" message: give it a moment to connect
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`pg_recvlogical exited with ${code}: ${err}`));
      });
    });
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    child.removeAllListeners('exit');
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
}
