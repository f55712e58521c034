// The raw clients the sink benchmark compares against: the same events
// written without any of the sink's guarantees (no version guard, no history,
// no offsets), as fast as each client allows.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import Redis from 'ioredis';
import { Client } from 'pg';
import { EsHttp } from '../sinks/elasticsearch/es-http';
import { elasticsearchSinkConfig } from '../sinks/elasticsearch/config';
import { partitionEvents, rowImages, Workload } from './sink-workload';

export interface Rate {
  label: string;
  perSecond: number;
}

const seconds = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e9;

/** ioredis, one pipeline per batch (SET row JSON, DEL for deletes), partitions concurrently. */
export async function redisPipelined(url: string, w: Workload): Promise<Rate> {
  const redis = new Redis(url);
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: w.partitions }, async (_, p) => {
    for (const batch of partitionEvents(w, p)) {
      const pipeline = redis.pipeline();
      for (const { event } of batch) {
        const key = `raw:public.items:${event.key.id}`;
        if (event.after) pipeline.set(key, JSON.stringify(event.after));
        else pipeline.del(key);
      }
      await pipeline.exec();
    }
  }));
  const elapsed = seconds(started);
  redis.disconnect();
  return { label: 'ioredis pipelined SET/DEL', perSecond: w.events / elapsed };
}

/** redis-benchmark SET with pipelining, values of the workload's JSON size. */
export async function redisBenchmark(port: number, w: Workload, valueBytes: number): Promise<Rate> {
  const output = await runCommand('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '-t', 'set', '-n', String(w.events), '-P', String(w.batch),
    '-c', String(w.partitions), '-d', String(valueBytes), '-r', String(w.keys), '--csv']);
  const match = /"SET","([\d.]+)"/.exec(output);
  if (!match) throw new Error(`unexpected redis-benchmark output: ${output}`);
  return { label: `redis-benchmark SET -P ${w.batch} -d ${valueBytes}`, perSecond: Number(match[1]) };
}

/** The DuckDB appender alone, every row image appended into a plain table, one flush at the end. */
export async function duckdbAppender(dir: string, w: Workload): Promise<Rate> {
  const instance = await DuckDBInstance.create(join(dir, 'appender.duckdb'));
  const connection = await instance.connect();
  await connection.run('CREATE TABLE items (id BIGINT, step BIGINT, note VARCHAR, amount VARCHAR, ratio DOUBLE, flag BOOLEAN, status VARCHAR, updated_at VARCHAR)');
  const appender = await connection.createAppender('items');
  let rows = 0;
  const started = process.hrtime.bigint();
  for (const row of rowImages(w)) {
    appender.appendBigInt(BigInt(row.id as number));
    appender.appendBigInt(BigInt(row.step as number));
    appender.appendVarchar(row.note as string);
    appender.appendVarchar(row.amount as string);
    appender.appendDouble(row.ratio as number);
    appender.appendBoolean(row.flag as boolean);
    appender.appendVarchar(row.status as string);
    appender.appendVarchar(row.updated_at as string);
    appender.endRow();
    rows++;
  }
  appender.closeSync();
  const elapsed = seconds(started);
  connection.closeSync();
  instance.closeSync();
  return { label: 'DuckDB appender alone', perSecond: rows / elapsed };
}

/** psql COPY ... FROM STDIN of every row image as CSV (file written beforehand, not timed). */
export async function postgresCopy(url: string, dir: string, w: Workload): Promise<Rate> {
  const file = join(dir, 'rows.csv');
  const out = createWriteStream(file);
  let rows = 0;
  for (const row of rowImages(w)) {
    const line = [row.id, row.step, `"${row.note}"`, row.amount, row.ratio, row.flag, row.status, row.updated_at].join(',') + '\n';
    if (!out.write(line)) await new Promise((r) => out.once('drain', r));
    rows++;
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  const client = new Client({ connectionString: url });
  await client.connect();
  await client.query('DROP TABLE IF EXISTS copy_items; CREATE TABLE copy_items (id bigint, step bigint, note text, amount text, ratio double precision, flag boolean, status text, updated_at text)');
  await client.end();
  const started = process.hrtime.bigint();
  await runCommand('psql', [url, '-v', 'ON_ERROR_STOP=1', '-c', `\\copy copy_items FROM '${file}' WITH (FORMAT csv)`]);
  return { label: 'psql \\copy FROM (CSV)', perSecond: rows / seconds(started) };
}

/** _bulk index actions without versions, one request per batch, partitions concurrently. */
export async function esRawBulk(node: string, w: Workload): Promise<Rate> {
  const http = new EsHttp(elasticsearchSinkConfig.parse({ name: 'raw', type: 'elasticsearch', node }));
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: w.partitions }, async (_, p) => {
    for (const batch of partitionEvents(w, p)) {
      const body = batch.map(({ event }) => event.after
        ? `{"index":{"_index":"raw-items","_id":"${event.key.id}"}}\n${JSON.stringify(event.after)}\n`
        : `{"delete":{"_index":"raw-items","_id":"${event.key.id}"}}\n`).join('');
      const reply = await http.request('POST', '/_bulk', body);
      if (reply.status !== 200) throw new Error(`raw bulk failed: ${reply.status}`);
    }
  }));
  const elapsed = seconds(started);
  await http.close();
  return { label: 'raw _bulk, no versions', perSecond: w.events / elapsed };
}

function runCommand(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(output) : reject(new Error(`${command} exited with ${code}: ${output.slice(-2000)}`))));
  });
}
