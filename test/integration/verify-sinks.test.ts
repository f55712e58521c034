// `cdc verify` and `cdc verify --repair` for the Elasticsearch sink (the semantics
// server) and the warehouse (Postgres and DuckDB engines), from a Postgres and a
// MariaDB source (issue 13.5): rows deleted, changed and added behind the
// pipeline's back are found, the repair brings every sink back equal to the
// source (extras deleted too), and a second verify reports none.
import { strict as assert } from 'node:assert';
import { EsServer, startEsServer } from '../support/es-server';
import { MariadbServer, PgServer, startMariadb, startPostgres, stopAll } from '../support/servers';
import { runCliAsync } from '../support/service-process';
import { mariadbScenario, pgScenario, SinkTamper, tearDownScenario, VerifyScenario } from '../support/verify-scenario';
import { waitFor } from '../support/wait';

/** The detail lines of a verify report (missing/extra/different), sorted. */
function findings(stdout: string): string[] {
  return stdout.split('\n').filter((l) => /^\s+(missing|extra|different) /.test(l)).map((l) => l.trim()).sort();
}

for (const kind of ['postgres', 'mariadb'] as const) {
  describe(`cdc verify: Elasticsearch and warehouse (Postgres, DuckDB) sinks, ${kind} source`, function () {
    this.timeout(240_000);
    let pg: PgServer;
    let mariadb: MariadbServer | null = null;
    let es: EsServer;
    let s: VerifyScenario;
    let tamper: SinkTamper;

    before(async () => {
      [pg, es] = await Promise.all([startPostgres(), startEsServer()]);
      if (kind === 'mariadb') mariadb = await startMariadb();
      s = kind === 'postgres' ? await pgScenario(pg, es, 'vspg') : await mariadbScenario(mariadb!, pg, es, 'vsmaria');
      tamper = new SinkTamper(s, es, pg);
      await s.service.start();
      await tamper.converge('the snapshot in Elasticsearch and the Postgres warehouse');
    });
    after(async () => {
      await tearDownScenario(s);
      await es?.stop();
      await stopAll();
    });

    const verify = (...args: string[]) => runCliAsync(['verify', '-c', s.service.configPath, ...args], s.service.env);

    it('reports no differences when every sink equals the source (DuckDB verified by the running service that holds its file)', async () => {
      const result = await verify();
      assert.equal(result.code, 0, result.stderr + result.stdout);
      for (const sink of ['search', 'pgwh', 'duck']) {
        assert.match(result.stdout, new RegExp(`sink ${sink}, table ${s.table.replace('.', '\\.')}: 1000 source rows compared, no differences`), result.stdout);
      }
      assert.match(result.stdout, /sink duck: its files are held by the running service; verifying there/);
    });

    it('finds rows deleted, changed and added behind the pipeline\'s back; --repair makes every sink equal again, extras deleted; verify then reports none', async () => {
      const t = s.table;
      const ghost = { id: 99999, name: 'ghost', qty: 1, price: '1.00' };
      await tamper.es_([{ id: '17' }, { id: '42', doc: { ...tamper.esRows().get('42'), name: 'stale' } }, { id: '99999', doc: ghost }]);
      await tamper.pgwh(`DELETE FROM $T WHERE id = 17; UPDATE $T SET name = 'stale' WHERE id = 42;
        INSERT INTO $T (id, name, qty, price, _cdc_version, _cdc_deleted, _cdc_synced_at) VALUES (99999, 'ghost', 1, '1.00', '0', false, now())`);
      assert.equal(await s.service.stop(), 0);
      await tamper.duck(async (engine, table) => {
        await engine.query(`DELETE FROM ${table} WHERE id = 17`);
        await engine.query(`UPDATE ${table} SET qty = 12345 WHERE id = 42`);
        await engine.query(`INSERT INTO ${table} (id, name, qty, price, _cdc_version, _cdc_deleted, _cdc_synced_at) VALUES (99999, 'ghost', 1, '1.00', '0', false, current_timestamp)`);
      });
      const expectedFindings = [`different ${t}:42`, `extra ${t}:99999`, `missing ${t}:17`];

      // With the service stopped, the CLI opens the DuckDB file itself.
      const duckOffline = await verify('--sink', 'duck');
      assert.equal(duckOffline.code, 2, duckOffline.stderr + duckOffline.stdout);
      assert.doesNotMatch(duckOffline.stdout, /held by the running service/);
      assert.deepEqual(findings(duckOffline.stdout), expectedFindings);

      await s.service.start();
      for (const sink of ['search', 'pgwh', 'duck']) {
        const found = await verify('--sink', sink);
        assert.equal(found.code, 2, found.stderr + found.stdout);
        assert.match(found.stdout, new RegExp(`sink ${sink}, table ${t.replace('.', '\\.')}: 1000 source rows compared, 1 missing, 1 extra, 1 different`), found.stdout);
        assert.deepEqual(findings(found.stdout), expectedFindings, `sink ${sink}`);
      }

      const repaired = await verify('--repair');
      assert.equal(repaired.code, 2, repaired.stderr + repaired.stdout);
      // The first sink's resync re-reads the keys into every sink: later sinks may find only their extra left.
      assert.match(repaired.stdout, new RegExp(`^sink search, table ${t.replace('.', '\\.')}: 1000 source rows compared, 1 missing, 1 extra, 1 different\n  missing .*\n  extra .*\n  different .*\n  repair: resync [0-9a-f-]{36} queued for 2 key\\(s\\) of ${t.replace('.', '\\.')}$`, 'm'), repaired.stdout);
      assert.equal(repaired.stdout.match(/repair: deleted 1 extra key\(s\) of .* the source does not have$/gm)?.length, 3, repaired.stdout);
      await tamper.converge('Elasticsearch and the Postgres warehouse repaired');
      assert.equal(tamper.esRows().has('99999'), false, 'the extra document is gone');
      assert.deepEqual(await tamper.pgwh('SELECT _cdc_deleted FROM $T WHERE id = 99999'), [{ _cdc_deleted: true }], 'the extra warehouse row is deleted as the sink deletes (soft)');
      await waitFor(async () => (await verify()).code === 0, { timeoutMs: 60_000, intervalMs: 1000, what: 'verify to report no differences in any sink', describe: async () => (await verify()).stdout });

      // Changes keep flowing over the repaired rows (the repair left versions a newer change beats).
      await s.sourceSql(`UPDATE items SET name = 'after repair' WHERE id IN (17, 42); INSERT INTO items (id, name, qty) VALUES (99999, 'real now', 3)`);
      await tamper.converge('changes after the repair');
      await waitFor(async () => (await verify('--sink', 'duck')).code === 0, { timeoutMs: 30_000, intervalMs: 1000, what: 'the DuckDB warehouse to take the changes', describe: async () => (await verify('--sink', 'duck')).stdout });
      assert.equal(await s.service.stop(), 0);
      const expected = await s.sourceRows();
      const duck = await tamper.duckRows();
      assert.deepEqual([...duck.keys()].sort(), [...expected.keys()].sort(), 'DuckDB holds exactly the source\'s keys');
      assert.equal(duck.get('42')!.name, 'after repair');
      assert.equal(duck.get('99999')!.name, 'real now');
    });
  });
}
