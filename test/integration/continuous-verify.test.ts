// Continuous verification (issue 13.6): a sink with `verify:` compares a rolling
// sample of primary-key chunks with the source in the background. It counts rows
// checked, reports no mismatch under a steady write load the sinks keep up with,
// and catches a row altered behind the pipeline's back in Elasticsearch, a
// Postgres and a DuckDB warehouse, naming sink, table and key.
import { strict as assert } from 'node:assert';
import { Client } from 'pg';
import { EsServer, startEsServer } from '../support/es-server';
import { PgServer, startPostgres, stopAll } from '../support/servers';
import { pgScenario, SinkTamper, tearDownScenario, VerifyScenario } from '../support/verify-scenario';
import { waitFor } from '../support/wait';

const SINKS = ['search', 'pgwh', 'duck'];
const RECHECK_MS = 2000;

/** A counter's value for one sink and table (0 when the series is not there yet). */
function counter(metrics: string, name: string, sink: string, table: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(`sink="${sink}"`) && l.includes(`table="${table}"`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

describe('continuous verification (verify: on Elasticsearch, Postgres and DuckDB warehouse sinks)', function () {
  this.timeout(240_000);
  let pg: PgServer;
  let es: EsServer;
  let s: VerifyScenario;
  let tamper: SinkTamper;

  before(async () => {
    [pg, es] = await Promise.all([startPostgres(), startEsServer()]);
    s = await pgScenario(pg, es, 'cvpg', `{ intervalMs: 300, chunksPerRun: 3, chunkSize: 200, recheckDelayMs: ${RECHECK_MS} }`);
    tamper = new SinkTamper(s, es, pg);
    await s.service.start();
    await tamper.converge('the snapshot in Elasticsearch and the Postgres warehouse');
  });
  after(async () => {
    await tearDownScenario(s);
    await es?.stop();
    await stopAll();
  });

  const count = async (name: string, sink: string) => counter(await s.service.metrics(), name, sink, 'public.items');

  it('checks rows continuously and counts no mismatch under a steady write load the sinks keep up with', async () => {
    const before = await Promise.all(SINKS.map((sink) => count('cdc_verify_rows_checked_total', sink)));
    const client = new Client({ connectionString: s.service.env.PG_URL });
    await client.connect();
    let writes = 0;
    try {
      const until = Date.now() + 10_000;
      for (let next = 1001; Date.now() < until; writes++) {
        const ids = [1, 2, 3].map(() => 1 + Math.floor(Math.random() * 1000));
        await client.query(`UPDATE items SET qty = coalesce(qty, 0) + 1, name = 'load ' || $2::text WHERE id = ANY($1)`, [ids, writes]);
        if (writes % 10 === 0) await client.query(`INSERT INTO items (id, name, qty) VALUES ($1, 'new', 1)`, [next++]);
        if (writes % 10 === 5) await client.query(`DELETE FROM items WHERE id = (SELECT max(id) FROM items WHERE id > 1000)`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      await client.end();
    }
    await tamper.converge('the sinks after the load');
    await new Promise((resolve) => setTimeout(resolve, 4 * RECHECK_MS)); // rechecks started during the load finish
    const metrics = await s.service.metrics();
    if (process.env.TEST_VERBOSE) {
      console.log(`    ${writes} write transactions in 10 s; rows checked meanwhile: ${SINKS.map((sink, i) => `${sink} ${counter(metrics, 'cdc_verify_rows_checked_total', sink, 'public.items') - before[i]}`).join(', ')}`);
    }
    for (const [i, sink] of SINKS.entries()) {
      const checked = counter(metrics, 'cdc_verify_rows_checked_total', sink, 'public.items') - before[i];
      assert.ok(checked >= 1000, `sink ${sink}: ${checked} rows checked during the load (${writes} write transactions); expected at least one pass over the table`);
      assert.equal(counter(metrics, 'cdc_verify_mismatches_total', sink, 'public.items'), 0, `sink ${sink}: no mismatch while the sink was correct\n${s.service.output.filter((l) => /continuous verification/.test(l)).join('\n')}`);
    }
  });

  it('detects a row altered behind the pipeline\'s back in each sink and logs sink, table and key', async () => {
    await tamper.es_([{ id: '5', doc: { ...tamper.esRows().get('5'), name: 'tampered' } }]);
    await tamper.pgwh(`UPDATE $T SET name = 'tampered' WHERE id = 5`);
    for (const sink of ['search', 'pgwh']) {
      await waitFor(async () => (await count('cdc_verify_mismatches_total', sink)) >= 1, { timeoutMs: 30_000, intervalMs: 300, what: `sink ${sink} to count the altered row`, describe: () => s.service.recentOutput() });
    }
    assert.equal(await count('cdc_verify_mismatches_total', 'duck'), 0, 'the untouched DuckDB warehouse has no mismatch');

    // DuckDB: altered while the service is stopped (one process per file), caught after the restart.
    assert.equal(await s.service.stop(), 0);
    await tamper.duck((engine, table) => engine.query(`UPDATE ${table} SET qty = -1 WHERE id = 7`));
    await s.service.start();
    await waitFor(async () => (await count('cdc_verify_mismatches_total', 'duck')) >= 1, { timeoutMs: 30_000, intervalMs: 300, what: 'sink duck to count the altered row', describe: () => s.service.recentOutput() });

    const logged = s.service.output.filter((l) => /continuous verification: the sink does not hold these rows/.test(l));
    for (const [sink, key] of [['search', '5'], ['pgwh', '5'], ['duck', '7']]) {
      assert.ok(logged.some((l) => l.includes(`sink=${sink}`) && l.includes('table=public.items') && new RegExp(`keys=${key}\\b`).test(l)), `a line names sink ${sink}, the table and key ${key}:\n${logged.join('\n')}`);
    }
  });
});
