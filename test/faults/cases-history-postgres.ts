// Fault cases of a Postgres source's history (issue 12): a slot dropped while
// the service is stopped, a slot invalidated by max_slot_wal_keep_size, a slot
// stuck after its publication was dropped, and tables that join the capture later. Each runs under the suite's load and
// ends with its row-by-row comparison of every sink; each also checks that the
// operator was told (log line, metric, /readyz) and fails the case if not.
import { chownSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Client } from 'pg';
import { ensureBinary } from '../support/ensure-binary';
import { makeTempDir, run, serviceUser } from '../support/proc';
import type { FaultCase } from './cases';
import { CaseContext } from './context';
import { sleep } from './faults';
import { Pipeline, PipelineName } from './pipeline';

/** The slot of the suite's source (`src`): tidewater_<name>. */
const SLOT = 'tidewater_src';

function editConfig(p: Pipeline, edit: (yaml: string) => string): void {
  const file = join(p.dataDir, 'cdc.yaml');
  const before = readFileSync(file, 'utf8');
  const after = edit(before);
  if (after === before) throw new Error(`the config edit changed nothing in ${file}`);
  writeFileSync(file, after);
}

/** snapshot.mode when_needed on the source (the suite's config sets only chunkSize). */
const whenNeeded = (yaml: string) => yaml.replace(/snapshot: \{ chunkSize: (\d+) \}/, 'snapshot: { chunkSize: $1, mode: when_needed }');

async function onServer<T>(url: string, run: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url, application_name: 'fault-harness' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Fails the case (the fault script's error becomes a reason) when the operator was not told. */
async function expectLine(ctx: CaseContext, what: string, pattern: RegExp, sinceMs: number, timeoutMs = 20_000): Promise<void> {
  if (!(await ctx.waitLine(pattern, timeoutMs, sinceMs))) throw new Error(`the operator was not told ${what}: no log line matching ${pattern} within ${timeoutMs / 1000} s`);
  ctx.note(`told: ${what}`);
}

async function restartsFor(ctx: CaseContext, reason: string): Promise<number> {
  let total = 0;
  for (const [key, value] of (await ctx.monitor.metrics()) ?? []) {
    if (key.startsWith('cdc_component_restarts_total') && key.includes(`reason="${reason}"`)) total += value;
  }
  return total;
}

/** Fails the case unless the source shows as down for a lost or stuck slot: /readyz 503 and a slot_lost restart counted. */
async function expectSlotLostSignals(ctx: CaseContext, what: string): Promise<void> {
  let ready: boolean | null = null;
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(250)) if ((ready = await ctx.monitor.ready()) === false) break;
  if (ready !== false) throw new Error(`the operator was not told ${what}: /readyz answered ${ready === null ? 'nothing' : '200'}`);
  const restarts = await restartsFor(ctx, 'slot_lost');
  if (restarts < 1) throw new Error(`the operator was not told ${what}: no cdc_component_restarts_total{reason="slot_lost"}`);
  ctx.note(`told: /readyz 503, cdc_component_restarts_total{reason="slot_lost"} ${restarts}`);
}

/** Starts the stopped service with snapshot.mode when_needed; waits for `why` to start a re-snapshot and for it to complete. Returns when it started. */
async function restartWhenNeeded(ctx: CaseContext, why: string, startLine: RegExp, startTimeoutMs?: number): Promise<number> {
  editConfig(ctx.p, whenNeeded);
  const restartedAt = Date.now();
  await ctx.p.start();
  ctx.note('service restarted with snapshot.mode when_needed');
  await expectLine(ctx, why, startLine, restartedAt, startTimeoutMs);
  await expectLine(ctx, 'the re-snapshot completed', /snapshot complete/, restartedAt, 120_000);
  ctx.note(`re-snapshot complete ${((Date.now() - restartedAt) / 1000).toFixed(1)} s after the restart (recovery counts from the restart, so it includes the whole re-snapshot)`);
  return restartedAt;
}

/** Rows deleted and changed while the service is stopped (the load goes on too): a re-snapshot must remove them. */
async function changeWhileStopped(ctx: CaseContext): Promise<void> {
  const rows = await onServer(ctx.p.sourceUrl, async (c) => {
    const deleted = (await c.query(`DELETE FROM order_items WHERE order_id % 11 = 0`)).rowCount ?? 0;
    const customers = (await c.query(`DELETE FROM customers WHERE id % 13 = 0 AND id > 0`)).rowCount ?? 0;
    const updated = (await c.query(`UPDATE orders SET note = 'changed while the service was stopped' WHERE id % 17 = 0`)).rowCount ?? 0;
    return `${deleted} order_items and ${customers} customers deleted, ${updated} orders updated`;
  });
  ctx.note(`while the service was stopped: ${rows}`);
}

/** Slot dropped while the service is stopped, rows deleted meanwhile; restarted with when_needed: a re-snapshot, truncate first. */
const slotDropped = (pipeline: PipelineName): FaultCase => ({
  name: `slot-dropped@${pipeline}`, kind: 'source history: slot dropped', pipeline, inQuick: false,
  async inject(ctx) {
    await ctx.reach('stream');
    await ctx.p.stopService();
    ctx.note('service stopped');
    const dropped = await onServer(ctx.p.sourceUrl, async (c) => (await c.query(`SELECT pg_drop_replication_slot($1)`, [SLOT])).rowCount);
    ctx.note(`replication slot ${SLOT} dropped (${dropped})`);
    await changeWhileStopped(ctx);
    await sleep(ctx.between(1000, 4000));
    return restartWhenNeeded(ctx, 'the slot is missing and a re-snapshot starts', /exported snapshot.*slot tidewater_src is missing \(snapshot mode when_needed\)/);
  },
});

/**
 * A slot invalidated by max_slot_wal_keep_size while the service is stopped:
 * first restarted in the default mode (it must refuse, saying why, with /readyz
 * 503 and a slot_lost restart counted), then with when_needed (re-snapshot).
 */
const slotLost = (pipeline: PipelineName): FaultCase => ({
  name: `slot-lost@${pipeline}`, kind: 'source history: slot lost', pipeline, inQuick: false,
  async inject(ctx) {
    await ctx.reach('stream');
    await ctx.p.stopService();
    ctx.note('service stopped');
    const admin = ctx.p.lab.pg!.url;
    await onServer(admin, async (c) => {
      await c.query(`ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'`);
      await c.query('SELECT pg_reload_conf()');
    });
    try {
      const rounds = await onServer(ctx.p.sourceUrl, async (c) => {
        await c.query('CREATE TABLE IF NOT EXISTS wal_filler (id serial PRIMARY KEY, pad text)');
        for (let round = 1; round <= 30; round++) {
          for (let i = 0; i < 3; i++) {
            await c.query(`INSERT INTO wal_filler (pad) SELECT repeat('x', 500) FROM generate_series(1, 500)`);
            await c.query('SELECT pg_switch_wal()');
          }
          await c.query('CHECKPOINT');
          const { rows } = await c.query<{ wal_status: string }>('SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1', [SLOT]);
          if (rows[0]?.wal_status === 'lost') return round;
        }
        throw new Error(`slot ${SLOT} is still not lost after 30 rounds of WAL switches and checkpoints`);
      });
      ctx.note(`slot ${SLOT} invalidated (wal_status lost) after ${rounds} round(s) of WAL and CHECKPOINT under max_slot_wal_keep_size = 1MB`);
    } finally {
      // Back to the default at once: the new slot must not be invalidated by the load's WAL.
      await onServer(admin, async (c) => {
        await c.query('ALTER SYSTEM RESET max_slot_wal_keep_size');
        await c.query('SELECT pg_reload_conf()');
      });
    }
    await changeWhileStopped(ctx);

    // The default mode: the source refuses to stream and says so within seconds.
    const firstStart = Date.now();
    await ctx.p.start();
    await expectLine(ctx, 'the slot was invalidated (log naming max_slot_wal_keep_size)', /invalidated by the server.*max_slot_wal_keep_size.*set snapshot\.mode: when_needed/, firstStart);
    ctx.note(`lost slot reported ${((Date.now() - firstStart) / 1000).toFixed(1)} s after the start`);
    await expectSlotLostSignals(ctx, 'the slot is lost');
    await ctx.p.stopService();
    return restartWhenNeeded(ctx, 'the lost slot was dropped and a re-snapshot starts', /dropped the slot, re-snapshotting/);
  },
});

/**
 * The publication dropped under load while the service streams: the service
 * recreates it, but the slot reads the catalog as it was at each position, so
 * Postgres fails at the same position on every retry. In the default mode the
 * source must say so (log line naming the fix, /readyz 503, slot_lost);
 * restarted with when_needed it drops the slot and re-snapshots.
 */
const publicationDropped = (pipeline: PipelineName): FaultCase => ({
  name: `publication-dropped@${pipeline}`, kind: 'source history: slot stuck (publication dropped)', pipeline, inQuick: false,
  async inject(ctx) {
    await ctx.reach('stream');
    await sleep(ctx.between(0, 3000));
    const droppedAt = Date.now();
    await onServer(ctx.p.sourceUrl, (c) => c.query('DROP PUBLICATION tidewater_src'));
    ctx.note('publication tidewater_src dropped while the service streams under load');
    await expectLine(ctx, 'the slot is stuck (log naming the position and the fix)', /fails to decode replication slot tidewater_src at [0-9A-F]+\/[0-9A-F]+ on every retry: "publication "tidewater_src" does not exist".*set snapshot\.mode: when_needed/, droppedAt, 60_000);
    ctx.note(`stuck slot reported ${((Date.now() - droppedAt) / 1000).toFixed(1)} s after the drop`);
    await expectSlotLostSignals(ctx, 'the slot is stuck');
    await ctx.p.stopService();
    return restartWhenNeeded(ctx, 'the stuck slot is dropped and a re-snapshot starts', /fails to decode replication slot.*dropping the slot and re-snapshotting/, 60_000);
  },
});

const LATE_TABLE = (name: string, rows: number) => `
  CREATE TABLE ${name} (id int PRIMARY KEY, label text NOT NULL, n int NOT NULL DEFAULT 0, at timestamptz(6) NOT NULL DEFAULT now());
  INSERT INTO ${name} (id, label) SELECT g, '${name} ' || g FROM generate_series(1, ${rows}) g`;

/** Writes to the late tables (inserts, updates, deletes) until stopped: they change while they join. */
function lateLoad(ctx: CaseContext, tables: string[]): { stop(): Promise<number> } {
  let running = true;
  let changes = 0;
  const done = onServer(ctx.p.sourceUrl, async (c) => {
    while (running) {
      for (const table of tables) {
        const exists = (await c.query(`SELECT to_regclass($1) IS NOT NULL AS e`, [table])).rows[0].e as boolean;
        if (!exists) continue;
        const id = ctx.between(1, 3000);
        const r = ctx.between(0, 9);
        const sql = r < 4 ? `INSERT INTO ${table} (id, label) VALUES (${id}, 'inserted') ON CONFLICT (id) DO UPDATE SET n = ${table}.n + 1`
          : r < 8 ? `UPDATE ${table} SET n = n + 1, label = 'updated' WHERE id = ${id}`
            : `DELETE FROM ${table} WHERE id = ${id}`;
        await c.query(sql).catch(() => undefined);
        changes++;
      }
      await sleep(50);
    }
  });
  return { stop: async () => { running = false; await done; return changes; } };
}

/**
 * Tables that join the capture later: `public.late_added` (rows written while it
 * is not captured) added to `tables` in the config with `public.*` too, then a
 * restart; `public.late_created` created under `public.*` while the service runs.
 * Both are written to while they join, and both are compared in every sink.
 */
const lateTables = (pipeline: PipelineName): FaultCase => ({
  name: `late-tables@${pipeline}`, kind: 'source history: tables joining later', pipeline, inQuick: false,
  async inject(ctx) {
    await ctx.reach('stream');
    await onServer(ctx.p.sourceUrl, (c) => c.query(LATE_TABLE('late_added', 2000)));
    const load = lateLoad(ctx, ['public.late_added', 'public.late_created']);
    try {
      ctx.note('public.late_added created with 2000 rows (not captured yet), written to');
      await sleep(ctx.between(1000, 3000));
      await ctx.p.stopService();
      editConfig(ctx.p, (yaml) => yaml.replace(/tables: \[(public\.[^\]]*)\]/, 'tables: [$1, public.late_added, public.*]'));
      ctx.p.extraTables.push('public.late_added', 'public.late_created'); // the verdict compares them in every sink too
      const restartedAt = Date.now();
      await ctx.p.start();
      ctx.note('service restarted with public.late_added and public.* added to tables');
      await expectLine(ctx, 'public.late_added joined the capture and is read through the resync path', /tables joined the capture: reading their rows through the resync path.*late_added/, restartedAt, 60_000);
      await expectLine(ctx, 'public.late_added was read', /resync of table done.*late_added/, restartedAt, 60_000);
      await sleep(ctx.between(1000, 3000));
      const createdAt = Date.now();
      await onServer(ctx.p.sourceUrl, (c) => c.query(LATE_TABLE('late_created', 1500)));
      ctx.note('public.late_created created with 1500 rows while the service runs');
      await expectLine(ctx, 'public.late_created joined the capture (table watch)', /tables joined the capture: added to the publication.*late_created/, createdAt, 30_000);
      await expectLine(ctx, 'public.late_created was read', /resync of table done.*late_created/, createdAt, 60_000);
      ctx.note(`public.late_created joined ${((Date.now() - createdAt) / 1000).toFixed(1)} s after CREATE TABLE`);
      await sleep(3000);
      return restartedAt;
    } finally {
      ctx.note(`late tables: ${await load.stop()} changes written to them`);
    }
  },
});

/**
 * A failover to a server restored from an older base backup (same cluster,
 * lower WAL, a new timeline): the source Postgres is backed up mid-stream, the
 * load and the service go on, then the primary dies (kill -9) and the restored
 * copy takes its place (same address). Positions went backwards: in the default
 * mode the source must refuse, naming the server and the saved LSN; restarted
 * with when_needed it re-snapshots under a new source epoch, and every sink must
 * end equal to the new primary (rows only the old primary had are gone).
 */
const restoredBackup = (pipeline: PipelineName): FaultCase => ({
  name: `restored-backup-failover@${pipeline}`, kind: 'source history: failover to an older copy', pipeline, inQuick: false,
  async inject(ctx) {
    const pg = ctx.p.lab.pg!;
    const runAs = serviceUser('postgres');
    const binDir = dirname(realpathSync(ensureBinary(['initdb'], 'postgresql')));
    await ctx.reach('stream');
    const backupDir = makeTempDir('pg-restored', runAs);
    const restored = join(backupDir, 'data');
    await run(join(binDir, 'pg_basebackup'), ['-h', '127.0.0.1', '-p', String(pg.port), '-U', 'postgres', '-D', restored, '-X', 'stream', '--checkpoint=fast', '--no-sync'], { runAs, cwd: backupDir });
    ctx.note('base backup of the source Postgres taken; the load and the service go on');
    await sleep(ctx.between(5000, 10_000));
    await pg.kill9();
    // The restored copy takes the dead primary's place: same data directory path, port and socket.
    renameSync(pg.dataDir, `${pg.dataDir}-old`);
    renameSync(restored, pg.dataDir);
    const signal = join(pg.dataDir, 'recovery.signal');
    writeFileSync(signal, '');
    appendFileSync(join(pg.dataDir, 'postgresql.auto.conf'), `restore_command = 'false'\n`);
    if (runAs) chownSync(signal, runAs.uid, runAs.gid);
    await pg.start();
    await onServer(pg.url, async (c) => {
      for (let i = 0; i < 300 && (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0].r; i++) await sleep(100);
    });
    rmSync(`${pg.dataDir}-old`, { recursive: true, force: true });
    rmSync(backupDir, { recursive: true, force: true });
    const switchedAt = Date.now();
    ctx.note('the primary was killed (kill -9) and the restored copy promoted in its place (timeline 2)');
    await expectLine(ctx, 'positions went backwards (the source refuses, naming the saved LSN and what to do)', /cannot resume at the saved position [0-9A-F]+\/[0-9A-F]+ on .*set snapshot\.mode: when_needed/i, switchedAt, 60_000);
    let ready: boolean | null = null;
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(250)) if ((ready = await ctx.monitor.ready()) === false) break;
    if (ready !== false) throw new Error(`the operator was not told positions went backwards: /readyz answered ${ready === null ? 'nothing' : '200'}`);
    ctx.note('told: /readyz 503');
    await ctx.p.stopService();
    return restartWhenNeeded(ctx, 'a re-snapshot under source epoch 1 starts', /re-snapshotting under source epoch 1/);
  },
});

/** The Postgres source-history cases of the full suite (issue 12). */
export function historyPostgresCases(): FaultCase[] {
  return [slotDropped('pg-embedded'), slotLost('pg-embedded'), publicationDropped('pg-embedded'), lateTables('pg-embedded'), restoredBackup('pg-embedded')];
}
