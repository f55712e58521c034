// What one JavaScript thread can do at best on the log's hot path, and what a second thread
// costs in memory: `node dist/bench/floors.js [--events N]`. It measures, per event shape of the
// benchmarks, encoding an event into a log frame (FrameRunEncoder.add: JSON.stringify, the
// compaction key, the frame) and decoding a frame back (the JSON parse every sink read pays),
// with nothing else running in the process: ceilings for any single-threaded pipeline that keeps
// the log's JSON records. Then it encodes the same events once on the main thread and once in a
// worker thread (frames handed back one run at a time), each in a process of its own started as
// deploy/ starts the service, and prints both peak RSS figures.
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { ChangeEvent } from '../core/event/change-event';
import { asDeployed } from '../core/runtime/gc-tuning';
import { peakRssMb } from './lib/rss';
import { checkFrame, decodePayload, frameLengthAt, FrameRunEncoder, stampFrameAt } from '../core/log/record-codec';

const option = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
};

/** The benchmarks' rows as the sources make events of them (bench/snapshot.ts, bench/mysql-source.ts). */
const SHAPES: Record<string, (i: number) => ChangeEvent> = {
  'Postgres snapshot row (scenario 3)': (i) => ({
    op: 'r', key: { id: i }, before: null,
    after: { id: i, name: `item ${i}`, qty: i % 100, price: `${i % 1000}.25`, updated_at: '2026-12-05T01:02:03.123456Z' },
    source: { connector: 'postgresql', name: 'bench', db: 'bench', schema: 'public', table: 'snap', position: '0/1A2B3C4D', version: '00000000001a2b3c4d000000', snapshot: true, ts_ms: 1764896523000 },
    ts_ms: 1764896523000,
  }),
  'MariaDB update, both images (scenario 2)': (i) => ({
    op: 'u', key: { id: i },
    before: { id: i, name: `item ${i}`, qty: 3, updated_at: '2026-12-05T01:02:03.123456' },
    after: { id: i, name: `item ${i}`, qty: 4, updated_at: '2026-12-05T01:02:04.654321' },
    source: { connector: 'mysql', name: 'bench', db: 'bench_mysql', schema: 'bench_mysql', table: 'items', position: `binlog.000001:${1000 + i * 90}@0-1-77`, version: '0000000100000f4200000001', txId: '0-1-77', ts_ms: 1764896523000 },
    ts_ms: 1764896523000,
  }),
};

/** Best of three passes, in microseconds per event. */
function microsPerEvent(events: number, pass: () => void): number {
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    const started = process.hrtime.bigint();
    pass();
    best = Math.min(best, Number(process.hrtime.bigint() - started) / 1e3 / events);
  }
  return best;
}

/** Frames of `events` in runs, each frame stamped with its offset and checksum as the log's writer stamps it. */
function encodeAll(events: readonly ChangeEvent[], onRun: (frames: Buffer) => void): void {
  const encoder = new FrameRunEncoder();
  let offset = 0;
  const handOver = () => {
    const run = encoder.takeFrames();
    for (let pos = 0; pos < run.length; offset++) {
      const length = frameLengthAt(run, pos);
      stampFrameAt(run, pos, length, offset, 1764896523000);
      pos += length;
    }
    onRun(run);
  };
  for (const event of events) {
    encoder.add(event);
    if (encoder.length >= 200_000) handOver();
  }
  if (encoder.length > 0) handOver();
}

/** Events alive at once (a snapshot chunk holds 2,000 rows): a pass goes over them again and again, as the log sees chunk after chunk. */
const LIVE_EVENTS = 10_000;

function floors(count: number): void {
  const repeats = Math.max(1, Math.round(count / LIVE_EVENTS));
  console.log(`one thread, ${(repeats * LIVE_EVENTS).toLocaleString('en-US')} events per pass (${LIVE_EVENTS.toLocaleString('en-US')} alive at a time), best of 3 (Node ${process.version})`);
  console.log('| event | encode into a stamped frame | check and decode a frame | both |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const [label, make] of Object.entries(SHAPES)) {
    const events = Array.from({ length: LIVE_EVENTS }, (_, i) => make(i));
    const runs: Buffer[] = [];
    const encode = microsPerEvent(repeats * LIVE_EVENTS, () => {
      for (let r = 0; r < repeats; r++) {
        runs.length = 0;
        encodeAll(events, (frames) => runs.push(frames));
      }
    });
    const decode = microsPerEvent(repeats * LIVE_EVENTS, () => {
      for (let r = 0; r < repeats; r++) {
        for (const run of runs) {
          for (let pos = 0; pos < run.length; ) {
            const frame = checkFrame(run, pos);
            if (frame.kind !== 'ok') throw new Error(`frame at ${pos}: ${frame.kind}`);
            decodePayload(run, frame.payloadStart, frame.payloadLength);
            pos += frame.frameLength;
          }
        }
      }
    });
    const rate = (us: number) => `${us.toFixed(2)} µs (${Math.round(1e6 / us).toLocaleString('en-US')}/s)`;
    console.log(`| ${label} | ${rate(encode)} | ${rate(decode)} | ${rate(encode + decode)} |`);
  }
}

/** Encodes `count` snapshot rows, 10,000 events made at a time, handing each run of frames to `onRun`. */
function encodeSnapshotRows(count: number, onRun: (frames: Buffer) => void): void {
  const make = SHAPES['Postgres snapshot row (scenario 3)'];
  const batch = 10_000;
  for (let from = 0; from < count; from += batch) encodeAll(Array.from({ length: batch }, (_, i) => make(from + i)), onRun);
}

/** In a process of its own: encodes `count` snapshot events here or in a worker; prints elapsed ms and VmHWM. */
async function encodeOnce(where: string, count: number): Promise<void> {
  const started = Date.now();
  if (where === 'main') {
    encodeSnapshotRows(count, () => undefined);
  } else {
    // The worker runs this file's encodeAll on the same events and hands each run of frames over (transferred, not copied).
    const worker = new Worker(__filename, { argv: ['--worker-encode', String(count)] });
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (message: Buffer | 'done') => (message === 'done' ? resolve() : undefined));
      worker.on('error', reject);
    });
    await worker.terminate();
  }
  console.log(JSON.stringify({ where, ms: Date.now() - started, peakMb: peakRssMb() }));
}

async function workerSide(count: number): Promise<void> {
  const { parentPort } = await import('node:worker_threads');
  encodeSnapshotRows(count, (frames) => parentPort!.postMessage(frames, [frames.buffer as ArrayBuffer]));
  parentPort!.postMessage('done');
}

function secondThreadCost(count: number): void {
  console.log(`\n${count.toLocaleString('en-US')} snapshot events encoded in a process started as deploy/ starts the service, twice each way:`);
  for (const where of ['main', 'worker', 'main', 'worker']) {
    const node = asDeployed([__filename, '--encode-in', where, '--events', String(count)]);
    const child = spawnSync(process.execPath, node.args, { env: node.env, encoding: 'utf8' });
    if (child.status !== 0) throw new Error(`encoding in ${where} failed: ${child.stderr}`);
    const { ms, peakMb } = JSON.parse(child.stdout.trim().split('\n').pop()!) as { ms: number; peakMb: number };
    console.log(`  on the ${where === 'main' ? 'main thread' : 'worker thread'}: ${ms} ms, peak RSS ${peakMb.toFixed(0)} MB`);
  }
}

async function main(): Promise<void> {
  const workerAt = process.argv.indexOf('--worker-encode');
  if (workerAt >= 0) return workerSide(Number(process.argv[workerAt + 1]));
  const inAt = process.argv.indexOf('--encode-in');
  if (inAt >= 0) return encodeOnce(process.argv[inAt + 1], option('events', 2_000_000));
  floors(option('events', 300_000));
  secondThreadCost(option('events', 300_000) * 5);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
