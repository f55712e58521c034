// Fault cases of a MariaDB source's history (issue 12.2): RESET MASTER under
// load, with the service running or stopped, and a failover to a promoted GTID
// replica mid-load. Both run with snapshot.mode when_needed and end, like
// every case, with the row-by-row comparison of every sink against the source
// (after the failover: the new primary).
import { execFile } from 'node:child_process';
import { createConnection, RowDataPacket } from 'mysql2/promise';
import { runCli } from '../support/service-process';
import { MariadbServer, mariadbQuery, startMariadb } from '../support/servers';
import { startTcpProxy } from '../support/tcp-proxy';
import type { FaultCase } from './cases';
import { CaseContext } from './context';
import { sleep } from './faults';
import { LoadStats, WriteLoad } from './load';
import { logKindOf, PipelineName } from './pipeline';
import { sqlClient } from './sql-client';

const HISTORY_LINE = /failover: the saved position|re-snapshotting under source epoch|cannot resume/;

/** What `cdc status` shows as the source's checkpoint (its server and epoch prefixes tell the operator what happened). */
function statusCheckpoint(ctx: CaseContext): string {
  const status = runCli(['status', '-c', ctx.p.service.configPath], ctx.p.service.env);
  return (/(server=\S+|epoch=\S+|binlog\.\S+)/.exec(status.stdout)?.[0] ?? `(not shown: ${status.stdout.slice(0, 200)}${status.stderr.slice(0, 200)})`);
}

/** The source's history metrics as the operator sees them. */
async function historyMetrics(ctx: CaseContext): Promise<string> {
  const metrics = await ctx.monitor.metrics();
  const wanted = [...(metrics ?? [])].filter(([key]) => /^cdc_source_(history_events_total|epoch)\b/.test(key));
  return wanted.length ? wanted.map(([key, value]) => `${key} ${value}`).join(', ') : 'no history metrics';
}

/** Waits for the service's history line after `since` and notes it, or notes that none came. */
async function noteHistoryLine(ctx: CaseContext, since: number, timeoutMs: number): Promise<void> {
  const seen = await ctx.waitLine(HISTORY_LINE, timeoutMs, since);
  ctx.note(seen ? `the service said: ${lastLine(ctx, HISTORY_LINE)}` : `no log line about the source's history within ${timeoutMs / 1000} s`);
}

function lastLine(ctx: CaseContext, pattern: RegExp): string {
  const lines = ctx.p.service.output.filter((l) => pattern.test(l));
  return (lines[lines.length - 1] ?? '').replace(/^\S+ /, '').slice(0, 400);
}

/**
 * RESET MASTER under load: binlog positions start over at binlog.000001, below
 * every version stored. With the service running its binlog connection must
 * notice; stopped, the next start must. Either way the source re-snapshots
 * under a new source epoch (when_needed).
 */
const resetMaster = (when: 'running' | 'stopped', pipeline: PipelineName): FaultCase => ({
  name: `reset-master-${when}@${pipeline}`, kind: 'RESET MASTER', pipeline, inQuick: false,
  options: { snapshotMode: 'when_needed' },
  async inject(ctx) {
    await ctx.reach('stream');
    const port = ctx.p.lab.mariadb!.port;
    await mariadbQuery(port, 'FLUSH BINARY LOGS; FLUSH BINARY LOGS'); // the saved file well above binlog.000001
    await sleep(ctx.between(1000, 3000));
    let since = Date.now();
    if (when === 'stopped') {
      await ctx.p.stopService();
      await mariadbQuery(port, 'RESET MASTER');
      ctx.note('service stopped; RESET MASTER under load');
      await sleep(ctx.between(2000, 5000));
      since = Date.now();
      await ctx.p.start();
    } else {
      await mariadbQuery(port, 'RESET MASTER');
      ctx.note('RESET MASTER under load while the service streams');
    }
    await noteHistoryLine(ctx, since, 60_000);
    await ctx.waitLine(/snapshot complete/, 120_000, since);
    ctx.note(`re-snapshot complete ${((Date.now() - since) / 1000).toFixed(1)} s after the ${when === 'stopped' ? 'restart' : 'reset'}; cdc status: ${statusCheckpoint(ctx)}; ${await historyMetrics(ctx)}`);
    // Recovery counts from the reset (or the restart after it): the re-snapshot is part of it.
    return since;
  },
});

/** mariadb-dump of one database (consistent, with its GTID position) into another server, outside the target's binlog. */
function copyDatabase(from: MariadbServer, to: MariadbServer, database: string): Promise<void> {
  const shell = `mariadb-dump --no-defaults --protocol=TCP -h127.0.0.1 -P${from.port} -uroot --single-transaction --gtid --master-data=1 --databases ${database}`
    + ` | mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P${to.port} -uroot --init-command='SET sql_log_bin=0'`;
  return new Promise((resolve, reject) => execFile('bash', ['-c', `set -o pipefail; ${shell}`], { maxBuffer: 1 << 26, timeout: 300_000 }, (error, _out, stderr) => (error ? reject(new Error(`copying ${database}: ${stderr || error.message}`)) : resolve())));
}

async function waitApplied(replica: MariadbServer, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await relayApplied(replica)) return true;
    await sleep(200);
  }
  return false;
}

/** The replica has applied every event it received (Gtid_IO_Pos = gtid_slave_pos). */
async function relayApplied(replica: MariadbServer): Promise<boolean> {
  const connection = await createConnection({ host: '127.0.0.1', port: replica.port, user: 'root' });
  try {
    const [status] = await connection.query<RowDataPacket[]>('SHOW SLAVE STATUS');
    const [applied] = await connection.query<RowDataPacket[]>('SELECT @@GLOBAL.gtid_slave_pos AS pos');
    return status[0] !== undefined && String(status[0].Gtid_IO_Pos) === String(applied[0].pos);
  } finally {
    await connection.end().catch(() => undefined);
  }
}

/**
 * A failover mid-load. A replica of the case's database (GTID replication,
 * log_slave_updates, binlog numbered below the primary's) follows the lab's
 * MariaDB; mid-stream the primary is killed (kill -9: the replica may lack
 * its last transactions), the replica promoted (STOP SLAVE; RESET SLAVE ALL),
 * writes go on there, and the service is pointed at it (the source URL
 * changed, the service restarted). The source resumes after the saved GTID,
 * or re-snapshots when the replica lacks it; sinks are compared with the new
 * primary. The lab's MariaDB is restarted and put back afterwards.
 * `lossy`: the replica stops receiving a few seconds before the kill, so it
 * lacks transactions the service has read: the source must re-snapshot.
 */
const failover = (pipeline: PipelineName, lossy = false): FaultCase => {
  let replica: MariadbServer | undefined;
  let primary: MariadbServer | undefined;
  return {
    name: `failover${lossy ? '-lossy' : ''}@${pipeline}`, kind: lossy ? 'failover, transactions lost' : 'failover to a replica', pipeline, inQuick: false,
    options: { snapshotMode: 'when_needed' },
    async inject(ctx) {
      const p = ctx.p;
      primary = p.lab.mariadb!;
      replica = await startMariadb({ serverId: 2, args: ['--log-slave-updates', '--max-allowed-packet=1G'] });
      await copyDatabase(primary, replica, p.name);
      await mariadbQuery(replica.port, `CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${primary.port}, MASTER_USER='root', MASTER_USE_GTID=slave_pos; START SLAVE`);
      ctx.note(`replica (server_id 2) of ${p.name} started from a consistent dump and its GTID position; replicating`);
      await ctx.reach('stream');
      // The primary's binlog numbered above the replica's, so the failover sends positions backwards.
      await mariadbQuery(primary.port, 'FLUSH BINARY LOGS; FLUSH BINARY LOGS');
      await sleep(ctx.between(1000, 4000));
      if (lossy) {
        await mariadbQuery(replica.port, 'STOP SLAVE IO_THREAD');
        ctx.note('the replica stopped receiving (STOP SLAVE IO_THREAD): what the service reads next never reaches it');
        await sleep(3000);
      }
      await primary.kill9();
      const killedAt = Date.now();
      ctx.note('primary (server_id 1) killed (kill -9) mid-load');
      if (!(await waitApplied(replica, 30_000))) ctx.note('the replica had not applied its relay log within 30 s');
      await mariadbQuery(replica.port, 'STOP SLAVE; RESET SLAVE ALL');
      // The new primary takes the writes: the harness's own reads (probe, marker, comparison) follow the lab's MariaDB.
      p.lab.mariadb = replica;
      const newPrimary = replica;
      // The case's own rate and id space (run-case.ts): the Kafka mock's consumers keep up with 60 changes/s only.
      const kafka = logKindOf(pipeline) === 'kafka';
      const load = new WriteLoad({
        kind: 'mariadb', seed: ctx.between(1, 2 ** 30), changesPerSecond: kafka ? 60 : 300, maxChanges: 200_000, maxMs: 300_000, workers: 3,
        idSpace: Math.floor((kafka ? 3000 : ctx.quick ? 10_000 : 40_000) * 1.1),
        client: () => sqlClient('mariadb', newPrimary.url, p.name),
      });
      load.start();
      const stopFirst = ctx.load.stop.bind(ctx.load);
      // The case's load writes to the dead primary from here on; the harness stops it before the verdict, and this one with it.
      ctx.load.stop = async (): Promise<LoadStats> => {
        const [a, b] = await Promise.all([stopFirst(), load.stop()]);
        return { transactions: a.transactions + b.transactions, changes: a.changes + b.changes, failed: a.failed + b.failed, lastError: b.lastError || a.lastError };
      };
      ctx.note(`replica promoted ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill; writes go on there`);
      // The operator's move: the source URL now names the new primary, and the service is restarted.
      const proxy = await startTcpProxy({ port: newPrimary.port });
      const old = p.proxies.source;
      p.proxies.source = proxy;
      await old.close().catch(() => undefined);
      await p.stopService();
      p.service.env.SOURCE_URL = `mysql://root@127.0.0.1:${proxy.port}/`;
      const since = Date.now();
      await p.start();
      ctx.note('service pointed at the new primary (source URL changed) and restarted');
      await noteHistoryLine(ctx, since, 60_000);
      await ctx.waitLine(/streaming the binlog/, 120_000, since);
      ctx.note(`cdc status: ${statusCheckpoint(ctx)}; ${await historyMetrics(ctx)}`);
      return since;
    },
    async cleanup(ctx) {
      // Later cases use the lab's MariaDB: the old primary again, restarted after its crash.
      if (primary) {
        ctx.p.lab.mariadb = primary;
        await primary.start();
        await mariadbQuery(primary.port, 'SET GLOBAL max_allowed_packet = 1073741824');
      }
      await replica?.stop();
    },
  };
};

/** The cases of this file in run order; `catalog(full)` in cases.ts adds them to the full suite. */
export function historyMariadbCases(): FaultCase[] {
  return [
    resetMaster('running', 'maria-embedded'), resetMaster('stopped', 'maria-embedded'), failover('maria-embedded'), failover('maria-embedded', true),
    resetMaster('running', 'maria-kafka'), failover('maria-kafka'),
  ];
}
