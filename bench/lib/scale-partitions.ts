// Scale scenario, part 2: how the embedded log's append and a Redis replay out
// of it move with the number of partitions (1, 4, 16). Append is set beside
// the disk's sequential write of the same bytes, the replay beside ioredis
// pipelining the same events with one pipeline per partition at a time; the
// notes give each figure relative to 1 partition.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { ChangeEvent } from '../../core/event/change-event';
import { FileLog } from '../../core/log/file-log';
import { createLogger } from '../../core/runtime/logger';
import { redisSinkConfig } from '../../sinks/redis/config';
import { RedisSink } from '../../sinks/redis/redis-sink';
import { redisPipelined } from '../sink-baselines';
import { partitionEvents, Workload } from '../sink-workload';
import { BenchRow, summarize } from './report';
import { BenchContext } from './scenario';
import { sequentialWriteSeconds } from './sequential-write';

export const PARTITION_COUNTS = [1, 4, 16] as const;
const BATCH = 1000;
const logger = createLogger('bench', () => undefined);
const seconds = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e9;

interface PartitionRun {
  append: number;
  disk: number;
  replay: number;
  raw: number;
}

/** The workload's events, in append batches of 1,000 (generated before the clock starts). */
function appendBatches(w: Workload): ChangeEvent[][] {
  const events: ChangeEvent[] = [];
  for (let p = 0; p < w.partitions; p++) for (const batch of partitionEvents(w, p)) for (const record of batch) events.push(record.event);
  return Array.from({ length: Math.ceil(events.length / BATCH) }, (_, b) => events.slice(b * BATCH, (b + 1) * BATCH));
}

/** Every partition read from offset 0 and written into the sink batch by batch (write, flush), partitions concurrently: what the sink runner does. */
async function replay(log: FileLog, sink: RedisSink): Promise<void> {
  await Promise.all(Array.from({ length: log.partitions }, async (_, partition) => {
    for (let offset = 0; ;) {
      const batch = await log.readBatch(partition, offset, BATCH);
      if (batch.records.length === 0) return;
      await sink.write(batch.records);
      await sink.flush();
      offset = batch.nextOffset;
    }
  }));
}

async function flushRedis(url: string): Promise<void> {
  const redis = new Redis(url);
  await redis.flushdb();
  redis.disconnect();
}

async function runOnce(redisUrl: string, w: Workload): Promise<PartitionRun> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-scale-partitions-'));
  try {
    const batches = appendBatches(w);
    const log = new FileLog({ dir: join(dir, 'log'), partitions: w.partitions, compaction: { enabled: false } });
    await log.open();
    const appendStarted = process.hrtime.bigint();
    for (const batch of batches) await log.append(batch); // one writer, as one source appends
    const appendSeconds = seconds(appendStarted);
    const bytes = log.sizes().reduce((a, b) => a + b, 0);
    const diskSeconds = await sequentialWriteSeconds(dir, bytes);

    await flushRedis(redisUrl);
    const sink = new RedisSink(redisSinkConfig.parse({ name: 'bench', type: 'redis', url: redisUrl, keyPrefix: 'scale:' }), logger);
    await sink.open();
    const replayStarted = process.hrtime.bigint();
    await replay(log, sink);
    const replaySeconds = seconds(replayStarted);
    await sink.close();
    await log.close();
    await flushRedis(redisUrl);
    const raw = await redisPipelined(redisUrl, w);
    await flushRedis(redisUrl);
    return { append: w.events / appendSeconds, disk: w.events / diskSeconds, replay: w.events / replaySeconds, raw: raw.perSecond };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function partitionRows(ctx: BenchContext, events: number): Promise<BenchRow[]> {
  const redis = await ctx.redis();
  const measured = new Map<number, PartitionRun[]>();
  for (const partitions of PARTITION_COUNTS) {
    const w: Workload = { events, keys: Math.max(1, Math.round(events / 5)), partitions, batch: BATCH };
    const runs: PartitionRun[] = [];
    for (let run = 0; run < ctx.runs; run++) runs.push(await runOnce(redis.url, w));
    measured.set(partitions, runs);
    const m = (pick: (r: PartitionRun) => number) => Math.round(summarize(runs.map(pick)).median);
    ctx.say(`  partitions ${partitions}: append ${m((r) => r.append)}/s (disk ${m((r) => r.disk)}/s), Redis replay ${m((r) => r.replay)}/s (ioredis ${m((r) => r.raw)}/s)`);
  }
  const median = (partitions: number, pick: (r: PartitionRun) => number) => summarize(measured.get(partitions)!.map(pick)).median;
  const versusOne = (partitions: number, pick: (r: PartitionRun) => number) => (median(partitions, pick) / median(1, pick)).toFixed(2);
  const rows: BenchRow[] = [];
  for (const partitions of PARTITION_COUNTS) {
    const runs = measured.get(partitions)!;
    rows.push({
      scenario: `S2. embedded log append, ${partitions} partition${partitions > 1 ? 's' : ''} (${events.toLocaleString('en-US')} events)`,
      unit: 'events/s',
      ours: summarize(runs.map((r) => r.append)),
      baseline: summarize(runs.map((r) => r.disk)),
      baselineName: 'sequential write + fdatasync of the same bytes',
      notes: `one writer, batches of ${BATCH}, fsync group; ×${versusOne(partitions, (r) => r.append)} of 1 partition (disk ×${versusOne(partitions, (r) => r.disk)})`,
    });
  }
  for (const partitions of PARTITION_COUNTS) {
    const runs = measured.get(partitions)!;
    rows.push({
      scenario: `S2. log replay → Redis sink, ${partitions} partition${partitions > 1 ? 's' : ''} (${events.toLocaleString('en-US')} events)`,
      unit: 'events/s',
      ours: summarize(runs.map((r) => r.replay)),
      baseline: summarize(runs.map((r) => r.raw)),
      baselineName: `ioredis pipelined SET/DEL, ${partitions} pipeline${partitions > 1 ? 's' : ''} at a time`,
      notes: `read from the log, write + flush per batch of ${BATCH}, partitions concurrently; ×${versusOne(partitions, (r) => r.replay)} of 1 partition (ioredis ×${versusOne(partitions, (r) => r.raw)})`,
    });
  }
  return rows;
}
