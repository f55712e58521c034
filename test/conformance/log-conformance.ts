import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { ChangeEvent } from '../../core/event/change-event';
import { ChangeLog, LogRecord } from '../../core/log/change-log';
import { LogContext } from '../../core/log/create-log';
import { LogConfig } from '../../core/log/log-config';
import { compactionKeyOf } from '../../core/log/log-keys';
import { partitionsOf } from '../../core/log/partitioner';
import { makeVersion } from '../../core/event/version';
import { makeEvent } from '../support/events';
import { LogBackend, openFromConfig } from './backends';
import { consumeUntilCaughtUp } from '../support/log-reader';

const PARTITIONS = 4;

/** The contract every log backend keeps (docs/architecture.md §1), run against each one. */
export function describeLogConformance(backend: LogBackend): void {
  describe(`change-log conformance: ${backend.name}`, function () {
    this.timeout(90_000);
    let opened: ChangeLog[] = [];

    before(() => backend.setUp());
    after(() => backend.tearDown());
    afterEach(async () => {
      await Promise.allSettled(opened.map((l) => l.close()));
      opened = [];
    });

    async function open(config: LogConfig, context: LogContext): Promise<ChangeLog> {
      const log = openFromConfig(config, context);
      await log.open();
      opened.push(log);
      return log;
    }

    async function freshLog() {
      const setup = await backend.fresh(PARTITIONS);
      return { ...setup, log: await open(setup.config, setup.context) };
    }

    const inPartition = (events: ChangeEvent[], p: number) => events.filter((e) => partitionsOf(e, PARTITIONS).includes(p));
    let versionCounter = 0;
    const next = () => makeVersion(BigInt(1000 + ++versionCounter), 1);

    it('keeps per-row order across concurrent appends, puts a truncate in every partition, and delivers each delete once', async () => {
      const { log } = await freshLog();
      const events: ChangeEvent[] = [];
      for (let i = 0; i < 600; i++) {
        const id = i % 40;
        const op = i < 40 ? 'c' : i % 13 === 0 ? 'd' : 'u';
        events.push(makeEvent({ table: i % 3 ? 'items' : 'orders', key: { id }, op, after: op === 'd' ? null : { id, seq: i }, version: next() }));
      }
      events.splice(300, 0, makeEvent({ table: 'items', op: 't', version: next() }));
      const chunks = Array.from({ length: 20 }, (_, c) => events.slice(c * 31, c * 31 + 31));
      await Promise.all(chunks.map((chunk) => log.append(chunk))); // not awaited one by one: must still keep call order
      const got = await consumeUntilCaughtUp(log, 'order-check');
      for (let p = 0; p < PARTITIONS; p++) {
        assert.deepEqual(got[p].map((r) => r.event), inPartition(events, p), `partition ${p}`);
        assert.ok(got[p].every((r, i) => i === 0 || r.offset > got[p][i - 1].offset), `offsets grow in partition ${p}`);
        assert.equal(got[p].filter((r) => r.event.op === 't').length, 1, `one truncate in partition ${p}`);
      }
    });

    it('keeps every acknowledged append when the writer is killed with kill -9', async function () {
      // The writer opens the log first: the embedded log belongs to one process at a time.
      const { config, context } = await backend.fresh(PARTITIONS);
      const child = spawn(process.execPath, [path.join(__dirname, 'append-child.js'), JSON.stringify({ config, context })], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk) => (out += chunk));
      child.stderr.on('data', (chunk) => (err += chunk));
      const exited = new Promise((resolve) => child.on('exit', resolve));
      await new Promise((resolve) => child.stdout.once('data', resolve).once('end', resolve));
      await new Promise((resolve) => setTimeout(resolve, 300));
      child.kill('SIGKILL');
      await exited;
      const acked = out.split('\n').slice(0, -1); // the last piece may be a partial line
      assert.ok(acked.length > 0, `the writer acknowledged no batch before being killed: ${err}`);

      const log = await open(config, context);
      const got = await consumeUntilCaughtUp(log, 'after-crash');
      const rows = new Map<string, Set<number>>();
      for (let p = 0; p < PARTITIONS; p++) {
        const last = [-1, -1, -1];
        for (const { event } of got[p]) {
          const { w, n, i } = event.after as { w: number; n: number; i: number };
          assert.ok(n >= last[w], `worker ${w} batch ${n} after batch ${last[w]} in partition ${p}`);
          last[w] = n;
          rows.set(`${w}:${n}`, (rows.get(`${w}:${n}`) ?? new Set()).add(i));
        }
      }
      for (const batch of acked) assert.equal(rows.get(batch)?.size, 50, `acknowledged batch ${batch} is incomplete`);
      console.log(`      ${acked.length} batches acknowledged before kill -9, all present`);
    });

    it('reads from any offset', async () => {
      const { log } = await freshLog();
      await log.append(Array.from({ length: 240 }, (_, i) => makeEvent({ key: { id: i }, after: { id: i }, version: next() })));
      const all = await consumeUntilCaughtUp(log, 'everything');
      const ends = await log.endOffsets();
      const starts = new Map([
        [0, 0],
        [1, all[1][5].offset],
        [2, all[2][Math.floor(all[2].length / 2)].offset],
        [3, ends[3]],
      ]);
      const got = await consumeUntilCaughtUp(log, 'from-offsets', { startOffsets: starts });
      for (let p = 0; p < PARTITIONS; p++) {
        assert.deepEqual(got[p], all[p].filter((r) => r.offset >= starts.get(p)!), `partition ${p} from offset ${starts.get(p)}`);
      }
    });

    it('commits start offsets the sink holds beyond the log\'s commit, so lag reads 0 with nothing new to consume', async () => {
      const { log } = await freshLog();
      await log.append(Array.from({ length: 40 }, (_, i) => makeEvent({ key: { id: i }, after: { id: i }, version: next() })));
      const ends = await log.endOffsets();
      // The sink flushed everything, then stopped before the log committed: it resumes from its own offsets, at the end.
      const controller = new AbortController();
      const consuming = log.consume({
        consumer: 'sink-ahead',
        signal: controller.signal,
        startOffsets: async () => new Map(ends.map((end, p) => [p, end])),
        handle: async (batch) => {
          throw new Error(`nothing is left to hand over, yet partition ${batch.partition} got offsets from ${batch.records[0]?.offset}`);
        },
      });
      let committed = await log.committedOffsets('sink-ahead');
      for (const deadline = Date.now() + 20_000; Date.now() < deadline && committed.some((c, p) => c !== ends[p]); ) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        committed = await log.committedOffsets('sink-ahead');
      }
      controller.abort();
      await consuming;
      assert.deepEqual(committed, ends, 'the log learned where the sink stands');
    });

    it('resumes from committed offsets after reopening, and replays from offset zero on demand', async () => {
      const { config, context, log } = await freshLog();
      const events = Array.from({ length: 200 }, (_, i) => makeEvent({ key: { id: i }, after: { id: i }, version: next() }));
      await log.append(events);
      let handed = 0;
      // Batches of 10: a partition's next batch comes only after the previous one was committed, so stopping at 60 leaves commits behind.
      const first = await consumeUntilCaughtUp(log, 'resumer', { maxBatch: 10, onBatch: (b, stop) => (handed += b.records.length) >= 60 && stop() });
      const committed = await log.committedOffsets('resumer');
      assert.ok(committed.some((c) => c > 0), `something was committed: ${committed.join(',')}`);
      for (let p = 0; p < PARTITIONS; p++) {
        const below = first[p].filter((r) => r.offset < committed[p]).map((r) => r.event);
        assert.deepEqual(below, inPartition(events, p).slice(0, below.length), `partition ${p}: committed ${committed[p]} covers only handled records`);
      }
      await log.close();

      const reopened = await open(config, context);
      assert.deepEqual(await reopened.committedOffsets('resumer'), committed);
      const rest = await consumeUntilCaughtUp(reopened, 'resumer');
      const ends = await reopened.endOffsets();
      assert.deepEqual(await reopened.committedOffsets('resumer'), ends, 'caught up and committed');
      for (let p = 0; p < PARTITIONS; p++) {
        assert.ok(rest[p].every((r) => r.offset >= committed[p]), `partition ${p} resumed at ${committed[p]}`);
        assert.deepEqual(rest[p].map((r) => r.event), inPartition(events, p).slice(inPartition(events, p).length - rest[p].length));
      }

      const zeros = new Map(Array.from({ length: PARTITIONS }, (_, p) => [p, 0]));
      const replay = await consumeUntilCaughtUp(reopened, 'resumer', { startOffsets: zeros });
      for (let p = 0; p < PARTITIONS; p++) assert.deepEqual(replay[p].map((r) => r.event), inPartition(events, p), `replay of partition ${p}`);
    });

    it('stops consuming with the handler\'s error, committing nothing of the failed batch', async () => {
      const { log } = await freshLog();
      await log.append(Array.from({ length: 20 }, (_, i) => makeEvent({ key: { id: i }, version: next() })));
      const consuming = log.consume({
        consumer: 'failing',
        signal: new AbortController().signal,
        handle: async () => {
          throw new Error('sink exploded');
        },
      });
      await assert.rejects(consuming, /sink exploded/);
      assert.deepEqual(await log.committedOffsets('failing'), [0, 0, 0, 0]);
    });

    it('replays to the latest state of every row, before and after compaction, with stable offsets', async () => {
      const { log } = await freshLog();
      const latest = new Map<string, ChangeEvent>();
      const filler = 'x'.repeat(200); // enough bytes to fill several small segments
      for (let round = 0; round < 20; round++) {
        const batch: ChangeEvent[] = [];
        for (let id = 0; id < 60; id++) {
          const op = round === 0 ? 'c' : id % 10 === 0 && round === 6 ? 'd' : 'u';
          const e = makeEvent({ table: id % 2 ? 'items' : 'orders', key: { id }, op, after: op === 'd' ? null : { id, round, filler }, version: next() });
          batch.push(e);
        }
        if (round === 9) batch.push(makeEvent({ table: 'orders', op: 't', version: next() }));
        await log.append(batch);
        for (const e of batch) latest.set(compactionKeyOf(e), e);
      }
      // Rows touched after the truncate survive it; deleted rows stay deleted.
      const replayState = (records: LogRecord[][]) => {
        const state = new Map<string, ChangeEvent>();
        for (const r of records.flat().sort((a, b) => a.event.source.version.localeCompare(b.event.source.version))) {
          if (r.event.op === 't') {
            for (const k of [...state.keys()]) if (state.get(k)!.source.table === r.event.source.table) state.delete(k);
          } else if (r.event.op === 'd') state.delete(compactionKeyOf(r.event));
          else state.set(compactionKeyOf(r.event), r.event);
        }
        return state;
      };
      const expected = replayState([[...latest.values()].map((event) => ({ partition: 0, offset: 0, event }))]);
      const before = await consumeUntilCaughtUp(log, 'before-compaction');
      assert.deepEqual(replayState(before), expected);
      if (!backend.compact) return;
      await backend.compact(log);
      const after = await consumeUntilCaughtUp(log, 'after-compaction');
      assert.deepEqual(replayState(after), expected, 'a replay from zero of the compacted log gives the same rows');
      const originals = new Map(before.flat().map((r) => [`${r.partition}:${r.offset}`, r.event]));
      for (const r of after.flat()) assert.deepEqual(r.event, originals.get(`${r.partition}:${r.offset}`), `offset ${r.offset} of partition ${r.partition} kept its record`);
      const kept = after.flat().length;
      assert.ok(kept < before.flat().length / 3, `compaction kept ${kept} of ${before.flat().length} records`);
    });

    it('keeps what compaction needs: every record keyed by table and primary key, the last one per key the latest', async () => {
      const { log } = await freshLog();
      for (let round = 0; round < 20; round++) {
        await log.append(Array.from({ length: 50 }, (_, id) => makeEvent({ key: { id }, after: { id, round, pad: 'y'.repeat(300) }, version: next() })));
      }
      await log.append(Array.from({ length: 5 }, (_, id) => makeEvent({ key: { id }, op: 'd', version: next() })));
      if (!backend.compact) {
        // Compacted by its server on its own schedule (Kafka): check the records it would keep.
        const kept = await backend.keptByCompaction!();
        assert.equal(kept.size, 45, 'deleted rows leave no record but their tombstone');
        for (const [key, event] of kept) {
          assert.equal(key, compactionKeyOf(event), 'the record key is the compaction key');
          assert.equal(event.after!.round, 19, `${key} keeps its last version`);
        }
        return;
      }
      await backend.compact(log);
      const got = await consumeUntilCaughtUp(log, 'compacted');
      const rows = got.flat();
      // The active segment is never compacted, so a few older versions may remain there.
      const latestPerRow = new Map<string, unknown>();
      for (const { event } of rows) {
        if (event.op === 'd') latestPerRow.delete(compactionKeyOf(event));
        else latestPerRow.set(compactionKeyOf(event), event.after!.round);
      }
      assert.equal(latestPerRow.size, 45);
      assert.ok([...latestPerRow.values()].every((round) => round === 19), 'every row replays to its last version');
      assert.ok(rows.length < 50 * 20 * 0.35, `kept ${rows.length} of ${50 * 20} records`);
    });
  });
}
