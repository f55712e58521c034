// The catalog of fault cases: which fault, on which pipeline, aimed at which
// moment. `--quick` runs one case of each kind; the full suite runs them all.
import { tmpdir } from 'node:os';
import Redis from 'ioredis';
import { join } from 'node:path';
import { CaseContext, Moment, MOMENTS } from './context';
import {
  esOutage, fillDisk, freeDisk, killBinlogDump, mountTmpfs, PgBackend, redisOutage, restartSource, sleep,
  terminatePgBackends, unmountTmpfs, warehousePgOutage,
} from './faults';
import { PipelineName, PipelineOptions, sourceKindOf } from './pipeline';
import { historyMariadbCases } from './cases-history-mariadb';
import { historyPostgresCases } from './cases-history-postgres';

export interface FaultCase {
  /** Unique, e.g. restart-handoff@pg-embedded. */
  name: string;
  kind: string;
  pipeline: PipelineName;
  inQuick: boolean;
  options?: Partial<PipelineOptions>;
  /** Runs before the pipeline is set up (`id` names the case's service); a reason to skip when the fault cannot be had here. */
  prepare?(id: string): string | null;
  /** Injects the fault(s); resolves with the moment the last one cleared. */
  inject(ctx: CaseContext): Promise<number>;
  /** Runs after the verdict (e.g. unmount). */
  cleanup?(ctx: CaseContext): Promise<void>;
  /**
   * How long the pipeline may take to drain before the rows are compared, when
   * longer than the usual wait (a 2M-row transaction): the data verdict then
   * tells lost rows from slow ones. Recovery is still judged against 30 s,
   * but watched for as long, so the table says how long it did take.
   */
  drainMs?: number;
}

interface Sizes {
  outageMs: number;
  hangMs: number;
  kills: number;
  bigTxnRows: number;
  bigValueBytes: number;
}

export const QUICK_SIZES: Sizes = { outageMs: 30_000, hangMs: 35_000, kills: 3, bigTxnRows: 200_000, bigValueBytes: 5 << 20 };
export const FULL_SIZES: Sizes = { outageMs: 30_000, hangMs: 45_000, kills: 20, bigTxnRows: 2_000_000, bigValueBytes: 50 << 20 };

const restartAt = (moment: Moment, pipeline: PipelineName, inQuick = false): FaultCase => ({
  name: `restart-${moment}@${pipeline}`, kind: 'database restart', pipeline, inQuick,
  async inject(ctx) {
    await ctx.reach(moment);
    await restartSource(ctx.p);
    return Date.now();
  },
});

const terminateBackends = (pipeline: PipelineName, inQuick = false): FaultCase => ({
  name: `terminate-backends@${pipeline}`, kind: 'pg_terminate_backend', pipeline, inQuick,
  async inject(ctx) {
    const plan: [Moment, PgBackend][] = [['snapshot', 'reader'], ['stream', 'walsender'], ['stream', 'control']];
    for (const [moment, backend] of plan) {
      await ctx.reach(moment);
      ctx.note(`pg_terminate_backend of the ${backend}: ${await terminatePgBackends(ctx.p, backend)} backend(s)`);
      await sleep(ctx.between(1000, 3000));
    }
    return Date.now();
  },
});

const killDump = (pipeline: PipelineName, inQuick = false): FaultCase => ({
  name: `kill-binlog-dump@${pipeline}`, kind: 'KILL binlog dump', pipeline, inQuick,
  async inject(ctx) {
    for (let i = 0; i < 3; i++) {
      await ctx.reach('stream');
      ctx.note(`KILL of the binlog dump thread: ${await killBinlogDump(ctx.p)} thread(s)`);
    }
    return Date.now();
  },
});

const hang = (target: 'source' | 'redis' | 'es' | 'warehouse', pipeline: PipelineName, sizes: Sizes, inQuick = false): FaultCase => ({
  name: `hang-${target}@${pipeline}`, kind: 'hang (blackhole)', pipeline, inQuick,
  options: target === 'warehouse' ? { postgresWarehouse: true } : {},
  async inject(ctx) {
    await ctx.reach('stream');
    const proxy = ctx.p.proxies[target];
    proxy.blackhole();
    ctx.note(`${target} blackholed for ${sizes.hangMs / 1000} s (${proxy.connectionCount} connection(s) held)`);
    const restartsBefore = await restarts(ctx);
    const from = Date.now();
    await sleep(sizes.hangMs);
    const restartsDuring = await restarts(ctx);
    proxy.restore();
    ctx.note(`during the hang: /readyz ${ctx.monitor.notReadyBetween(from, Date.now()) ? 'went 503' : 'stayed 200'}; component restarts ${restartsBefore} → ${restartsDuring}`);
    return Date.now();
  },
});

async function restarts(ctx: CaseContext): Promise<number> {
  const metrics = await ctx.monitor.metrics();
  let total = 0;
  for (const [key, value] of metrics ?? []) if (key.startsWith('cdc_component_restarts_total')) total += value;
  return total;
}

const resetAll = (pipeline: PipelineName, inQuick = false): FaultCase => ({
  name: `reset-connections@${pipeline}`, kind: 'connection reset', pipeline, inQuick,
  async inject(ctx) {
    for (const moment of ['snapshot', 'stream', 'stream'] as Moment[]) {
      await ctx.reach(moment);
      const proxies = Object.entries(ctx.p.proxies);
      ctx.note(`reset of every connection (${proxies.map(([n, p]) => `${n}: ${p.connectionCount}`).join(', ')})`);
      for (const [, proxy] of proxies) proxy.reset();
    }
    return Date.now();
  },
});

const outage = (sink: 'redis' | 'warehouse' | 'es', pipeline: PipelineName, sizes: Sizes, inQuick = false): FaultCase => ({
  name: `outage-${sink}@${pipeline}`, kind: 'sink outage', pipeline, inQuick,
  options: sink === 'warehouse' ? { postgresWarehouse: true } : {},
  async inject(ctx) {
    await ctx.reach('stream');
    ctx.note(`${sink} ${sink === 'es' ? 'answering 503 then 429' : 'stopped'} for ${sizes.outageMs / 1000} s under load`);
    const from = Date.now();
    if (sink === 'redis') await redisOutage(ctx.p, sizes.outageMs);
    else if (sink === 'warehouse') await warehousePgOutage(ctx.p, sizes.outageMs);
    else await esOutage(ctx.p, sizes.outageMs);
    ctx.note(`during the outage /readyz ${ctx.monitor.notReadyBetween(from, Date.now()) ? 'went 503' : 'stayed 200'}`);
    return Date.now();
  },
});

const kill9 = (pipeline: PipelineName, kills: number, inQuick = false): FaultCase => ({
  name: `kill-9-x${kills}@${pipeline}`, kind: 'kill -9 of the service', pipeline, inQuick,
  options: { busyCompaction: true },
  async inject(ctx) {
    // The first kills aim at the snapshot, a resync and a reprocess; the rest at random moments of streaming (compaction runs every second).
    const plan: Moment[] = ['snapshot', 'resync', 'reprocess'];
    for (let i = 0; i < kills; i++) {
      const moment = plan[i] ?? ctx.pick<Moment>(['stream', 'stream', 'resync', 'reprocess']);
      if (i < plan.length || moment !== 'stream') await ctx.reach(moment);
      else await sleep(ctx.between(500, 4000));
      await ctx.p.kill9AndRestart();
      ctx.note(`kill -9 #${i + 1} (${moment}); restarted at once`);
    }
    return Date.now();
  },
});

const diskFull = (pipeline: PipelineName, inQuick = false): FaultCase => {
  let dir = '';
  let mounted = false;
  return {
    name: `disk-full@${pipeline}`, kind: 'log disk full', pipeline, inQuick,
    prepare(id) {
      dir = join(tmpdir(), `tidewater-faults-${id}-log`);
      const reason = mountTmpfs(dir, 64);
      mounted = reason === null;
      if (mounted) this.options = { logDir: dir };
      return reason;
    },
    async inject(ctx) {
      await ctx.reach('stream');
      const filler = fillDisk(dir);
      ctx.note(`log tmpfs (64 MB) filled to the brim; freed after 15 s`);
      await sleep(15_000);
      freeDisk(filler);
      return Date.now();
    },
    async cleanup() {
      if (mounted) unmountTmpfs(dir);
    },
  };
};

/**
 * One transaction of `rows` rows, then three rows of `valueBytes` each (either may be 0).
 * The full suite also runs each part alone, so the memory of the big values and the
 * time to drain the big transaction are each measured on their own.
 */
const big = (pipeline: PipelineName, rows: number, valueBytes: number, inQuick = false): FaultCase => ({
  name: `${rows && valueBytes ? 'big-transaction-and-values' : rows ? 'big-transaction' : 'big-values'}@${pipeline}`,
  kind: rows && valueBytes ? 'big transaction and values' : rows ? 'big transaction' : 'big values', pipeline, inQuick,
  // Three sinks absorbing 2M changes under the load take minutes here (2 cores).
  ...(rows >= 1_000_000 ? { drainMs: 600_000 } : {}),
  async inject(ctx) {
    await ctx.reach('stream');
    const pg = sourceKindOf(pipeline) === 'postgres';
    const client = ctx.p.sourceClient();
    try {
      if (rows > 0) {
        const started = Date.now();
        await client.query(pg
          ? `INSERT INTO order_items SELECT -g, 1, g % 100 FROM generate_series(1, ${rows}) g`
          : `INSERT INTO order_items SELECT -seq, 1, seq % 100 FROM seq_1_to_${rows}`);
        ctx.note(`one transaction of ${rows.toLocaleString('en')} rows committed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      }
      if (valueBytes > 0) {
        for (let id = -3; id <= -1; id++) {
          await client.query(pg
            ? `INSERT INTO orders (id, customer_id, note, payload) VALUES (${id}, 1, 'big', repeat('x', ${valueBytes}))`
            : `INSERT INTO orders (id, customer_id, note, payload) VALUES (${id}, 1, 'big', REPEAT('x', ${valueBytes}))`);
        }
        ctx.note(`3 rows with ${valueBytes >> 20} MB values written`);
      }
    } finally {
      await client.close();
    }
    return Date.now();
  },
});

/**
 * A resync whose `where` fails at run time on Postgres (`id = 'not a number'`:
 * 22P02; MariaDB only warns and matches nothing), then rows deleted from Redis
 * behind the service's back, then a plain resync of the table: it must run
 * and restore them, whether the bad one was refused up front or failed.
 */
const resyncBadWhere = (pipeline: PipelineName, inQuick = false): FaultCase => ({
  name: `resync-failing-where@${pipeline}`, kind: 'resync --where failing', pipeline, inQuick,
  async inject(ctx) {
    await ctx.reach('stream');
    await ctx.waitUp();
    const table = `${ctx.p.schema}.customers`;
    ctx.note(`resync --where failing at run time: ${await ctx.admin('/api/resync', { source: ctx.p.sourceName, tables: [table], where: "id = 'not a number'" })}`);
    await sleep(2000);
    const redis = new Redis(ctx.p.lab.redis.url);
    try {
      const keys = Array.from({ length: 50 }, () => `${ctx.p.prefix}${table}:${ctx.between(1, 5000)}`);
      ctx.note(`deleted ${await redis.del(...keys)} customer keys from Redis behind the service's back`);
    } finally {
      redis.disconnect();
    }
    ctx.note(`plain resync of ${table}: ${await ctx.admin('/api/resync', { source: ctx.p.sourceName, tables: [table] })}`);
    return Date.now();
  },
});

/** No fault at all: the same load and verdict, to tell a fault's damage from a steady-state bug. */
const baseline = (pipeline: PipelineName): FaultCase => ({
  name: `no-fault@${pipeline}`, kind: 'none (baseline)', pipeline, inQuick: false,
  async inject(ctx) {
    await ctx.reach('stream');
    await sleep(10_000);
    return Date.now();
  },
});

/** Every case, in run order; the quick subset is marked. */
export function catalog(full: boolean): FaultCase[] {
  const s = full ? FULL_SIZES : QUICK_SIZES;
  const cases: FaultCase[] = [
    restartAt('handoff', 'pg-embedded', true),
    terminateBackends('pg-kafka', true),
    killDump('maria-embedded', true),
    hang('source', 'pg-embedded', s, true),
    resetAll('pg-kafka', true),
    outage('redis', 'maria-embedded', s, true),
    kill9('pg-embedded', s.kills, true),
    diskFull('pg-embedded', true),
    big('pg-embedded', s.bigTxnRows, s.bigValueBytes, true),
    resyncBadWhere('maria-embedded', true),
  ];
  if (!full) return cases;
  for (const pipeline of ['pg-embedded', 'pg-kafka', 'maria-embedded', 'maria-kafka'] as PipelineName[]) {
    for (const moment of MOMENTS) if (!(moment === 'handoff' && pipeline === 'pg-embedded')) cases.push(restartAt(moment, pipeline));
  }
  cases.push(
    terminateBackends('pg-embedded'), killDump('maria-kafka'),
    hang('redis', 'pg-embedded', s), hang('es', 'maria-embedded', s), hang('warehouse', 'pg-embedded', s),
    hang('source', 'pg-kafka', s), hang('source', 'maria-embedded', s), hang('source', 'maria-kafka', s),
    resetAll('pg-embedded'), resetAll('maria-embedded'), resetAll('maria-kafka'),
    outage('redis', 'pg-kafka', s), outage('warehouse', 'pg-embedded', s), outage('es', 'pg-embedded', s), outage('es', 'maria-kafka', s),
    kill9('pg-kafka', 10), kill9('maria-embedded', 10), kill9('maria-kafka', 10),
    diskFull('maria-embedded'), resyncBadWhere('pg-embedded'),
    // Not on Kafka: the mock keeps ~5 MiB per partition, far below a 2M-row transaction or 50 MB values.
    big('maria-embedded', s.bigTxnRows, s.bigValueBytes),
    big('pg-embedded', 0, s.bigValueBytes), big('maria-embedded', 0, s.bigValueBytes),
    big('pg-embedded', s.bigTxnRows, 0), big('maria-embedded', s.bigTxnRows, 0),
    ...(['pg-embedded', 'pg-kafka', 'maria-embedded', 'maria-kafka'] as PipelineName[]).map(baseline),
  );
  cases.push(...historyMariadbCases());
  cases.push(...historyPostgresCases());
  return cases;
}
