// Change-event log throughput beside the disk's plain sequential-write speed,
// measured in the same run: embedded-log append (per durability policy) and
// read, compaction, and Kafka produce. Run: npm run bench:log
// Options (env): BENCH_EVENTS (default 200000), BENCH_KAFKA_EVENTS (default 40000),
// KAFKA_BROKERS (a real cluster with a topic BENCH_KAFKA_TOPIC of 8 partitions; default: librdkafka's mock).
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChangeEvent } from '../core/event/change-event';
import { makeVersion } from '../core/event/version';
import { createLog } from '../core/log/create-log';
import { FileLog } from '../core/log/file-log';
import { FsyncPolicy } from '../core/log/group-commit-writer';
import { logConfig } from '../core/log/log-config';
import { startKafkaMock } from '../test/support/kafka';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 200_000);
const KAFKA_EVENTS = Number(process.env.BENCH_KAFKA_EVENTS ?? 40_000);
const BATCH = 1000;
const PARTITIONS = 8;

interface Result {
  what: string;
  events: number;
  bytes: number;
  seconds: number;
}
const results: Result[] = [];

/** An update of a realistic row (~350 bytes as JSON). */
function event(i: number): ChangeEvent {
  const now = Date.now();
  const id = i % 50_000;
  return {
    op: 'u',
    key: { id },
    before: null,
    after: { id, name: `customer ${id}`, email: `customer${id}@example.com`, balance: `${(i % 10_000) / 100}`, n: i, updated_at: '2024-02-29T12:34:56.123456Z' },
    source: { connector: 'postgresql', name: 'bench', db: 'shop', schema: 'public', table: 'customers', position: `0/${i.toString(16)}`, version: makeVersion(BigInt(i + 1), 1), ts_ms: now },
    ts_ms: now,
  };
}

const batches = (count: number) => Array.from({ length: Math.ceil(count / BATCH) }, (_, b) => Array.from({ length: Math.min(BATCH, count - b * BATCH) }, (_, i) => event(b * BATCH + i)));

async function timed(what: string, events: number, run: () => Promise<number>): Promise<void> {
  const start = process.hrtime.bigint();
  const bytes = await run();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  results.push({ what, events, bytes, seconds });
  console.error(`  ${what}: ${seconds.toFixed(2)} s`);
}

/** The physical limit: the same bytes written sequentially in 1 MiB chunks, fdatasync at the end (and every 8 MiB). */
async function sequentialWrite(dir: string, bytes: number): Promise<void> {
  const chunk = Buffer.alloc(1024 * 1024, 'x');
  await timed('baseline: plain sequential write + fdatasync', 0, async () => {
    const fh = await fs.open(path.join(dir, 'baseline.bin'), 'w');
    let written = 0;
    for (let since = 0; written < bytes; written += chunk.length) {
      await fh.write(chunk);
      if ((since += chunk.length) >= 8 * 1024 * 1024) [since] = [0, await fh.datasync()];
    }
    await fh.datasync();
    await fh.close();
    return written;
  });
}

async function embeddedAppend(dir: string, fsync: FsyncPolicy, writers: number, count: number): Promise<FileLog> {
  const log = new FileLog({ dir: path.join(dir, `log-${fsync}-${writers}`), partitions: PARTITIONS, durability: { fsync }, compaction: { enabled: false } });
  await log.open();
  const work = batches(count);
  await timed(`embedded append, fsync ${fsync}, ${writers} writer${writers > 1 ? 's' : ''} of ${BATCH}-event batches`, count, async () => {
    let next = 0;
    await Promise.all(Array.from({ length: writers }, async () => {
      while (next < work.length) await log.append(work[next++]);
    }));
    return log.sizes().reduce((a, b) => a + b, 0);
  });
  return log;
}

async function embeddedRead(log: FileLog, count: number): Promise<void> {
  await timed('embedded read, every partition from offset 0', count, async () => {
    let bytes = 0;
    const ends = await log.endOffsets();
    await Promise.all(ends.map(async (end, p) => {
      for (let offset = 0; offset < end; ) {
        const { records, nextOffset } = await log.readBatch(p, offset, 5000);
        for (const r of records) bytes += r.event.source.position.length; // touch the decoded events
        offset = nextOffset;
      }
    }));
    return log.sizes().reduce((a, b) => a + b, 0);
  });
}

/**
 * What the sink runners ask of the log: `consumers` consumers (one per sink) each consume every partition from
 * offset 0 in batches of 1,000, side by side, with handlers that only touch the events. They share the batches
 * they read (recent-reads.ts): three take about as long as one when they keep in step.
 */
async function embeddedConsume(log: FileLog, count: number, consumers: number): Promise<void> {
  await timed(`embedded consume, ${consumers} consumer${consumers > 1 ? 's' : ''} side by side (events/s per consumer)`, count, async () => {
    await Promise.all(Array.from({ length: consumers }, async (_, c) => {
      const stop = new AbortController();
      let seen = 0;
      await log.consume({
        consumer: `bench-${consumers}-${c}`,
        signal: stop.signal,
        handle: async ({ records }) => {
          for (const r of records) seen += r.event.source.position.length > 0 ? 1 : 0;
          if (seen >= count) stop.abort();
        },
      });
    }));
    return log.sizes().reduce((a, b) => a + b, 0);
  });
}

/** A log of small segments holding ~4 versions of each of 50k rows, compacted once. */
async function compaction(dir: string): Promise<void> {
  const log = new FileLog({ dir: path.join(dir, 'log-compaction'), partitions: PARTITIONS, segmentBytes: 1024 * 1024, durability: { fsync: 'none' }, compaction: { enabled: false } });
  await log.open();
  for (const batch of batches(EVENTS)) await log.append(batch);
  let kept = '';
  await timed('embedded compaction pass (sealed segments; rows updated ~4 times each)', EVENTS, async () => {
    const stats = await log.compact();
    kept = `kept ${((stats.bytesAfter / stats.bytesBefore) * 100).toFixed(0)}% of ${(stats.bytesBefore / 1e6).toFixed(0)} MB sealed`;
    return stats.bytesBefore;
  });
  results[results.length - 1].what += ` (${kept})`;
  await log.close();
}

/** Where the CPU goes: turning events into JSON and back, without any log around it. */
async function serialization(count: number): Promise<void> {
  const work = batches(count);
  await timed('reference: JSON.stringify + JSON.parse of the same events (no I/O)', count, async () => {
    let bytes = 0;
    for (const batch of work) for (const e of batch) bytes += (JSON.parse(JSON.stringify(e)) as ChangeEvent).source.position.length;
    return work.flat().reduce((sum, e) => sum + JSON.stringify(e).length, bytes * 0);
  });
}

async function kafkaProduce(count: number): Promise<void> {
  const real = process.env.KAFKA_BROKERS;
  const topic = process.env.BENCH_KAFKA_TOPIC ?? 'bench.changes';
  const mock = real ? undefined : await startKafkaMock({ brokers: 3, topics: [{ name: topic, partitions: PARTITIONS }] });
  try {
    const config = logConfig.parse({ type: 'kafka', brokers: real ? real.split(',') : mock!.brokers, topic, partitions: PARTITIONS, idempotent: Boolean(real) });
    const log = createLog(config, { serviceName: 'bench', dataDir: os.tmpdir(), tables: [] });
    await log.open();
    const work = batches(count);
    await timed(`kafka produce (${real ? 'cluster at KAFKA_BROKERS' : 'librdkafka mock cluster, in memory'}), acks=all, ${BATCH}-event appends`, count, async () => {
      for (const batch of work) await log.append(batch);
      return work.flat().reduce((sum, e) => sum + JSON.stringify(e).length + 40, 0);
    });
    await log.close();
  } finally {
    await mock?.stop();
  }
}

async function main(): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-log-'));
  console.error(`log throughput: ${EVENTS} events of ~${JSON.stringify(event(1)).length} bytes, ${PARTITIONS} partitions, in ${dir}`);
  try {
    const grouped = await embeddedAppend(dir, 'group', 4, EVENTS);
    const logBytes = grouped.sizes().reduce((a, b) => a + b, 0);
    await sequentialWrite(dir, logBytes);
    await serialization(EVENTS);
    await embeddedRead(grouped, EVENTS);
    await embeddedConsume(grouped, EVENTS, 1);
    await embeddedConsume(grouped, EVENTS, 3);
    await grouped.close();
    await (await embeddedAppend(dir, 'group', 1, EVENTS)).close();
    await (await embeddedAppend(dir, 'none', 4, EVENTS)).close();
    await (await embeddedAppend(dir, 'always', 4, Math.min(EVENTS, 20_000))).close();
    await compaction(dir);
    await kafkaProduce(KAFKA_EVENTS);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
  report();
}

function report(): void {
  const baseline = results.find((r) => r.what.startsWith('baseline'))!;
  const baseMBs = baseline.bytes / 1e6 / baseline.seconds;
  const json = results.find((r) => r.what.startsWith('reference'))!;
  const jsonRate = json.events / json.seconds;
  const rows = results.map((r) => {
    const mbs = r.bytes / 1e6 / r.seconds;
    const rate = r.events / r.seconds;
    return [r.what, r.events ? Math.round(rate).toLocaleString('en') : '-', mbs.toFixed(1), `${((mbs / baseMBs) * 100).toFixed(0)}%`, r.events ? `${((rate / jsonRate) * 100).toFixed(0)}%` : '-'];
  });
  // The disk is rarely the limit: turning events into JSON and back is, hence the second ratio.
  const header = ['measurement', 'events/s', 'MB/s', 'of baseline MB/s', 'of JSON round trip events/s'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(line(header));
  for (const r of rows) console.log(line(r));
}

main().catch((error: Error) => {
  console.error(error);
  process.exit(1);
});
