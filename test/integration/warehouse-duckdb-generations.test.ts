import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeVersion } from '../../core/event/version';
import { createLogger } from '../../core/runtime/logger';
import { DeadLetterStore } from '../../sinks/shared/dead-letters';
import { warehouseSinkConfig } from '../../sinks/warehouse/config';
import { DuckDbEngine } from '../../sinks/warehouse/duckdb';
import { WarehouseSink } from '../../sinks/warehouse/warehouse-sink';
import { makeEvent } from '../support/events';
import { asRecords } from '../support/sink-history';

const quiet = createLogger('test', () => undefined);

/**
 * A rebuild (`cdc reprocess`) writes a new generation into the same DuckDB
 * file as the live one, on a connection of its own. DuckDB replaces a row by
 * appending its new image and deleting the old one by row id; a checkpoint
 * committed by the other connection while that transaction ran moved row ids
 * under it (seen in the fault suite: the live table lost 1,992 rows and kept
 * 2,000 old images twice). Reproduced here with resync-like rounds on the live
 * generation while the rebuild commits beside it and another connection
 * checkpoints.
 */
describe('Warehouse on DuckDB: a rebuild beside the live generation', function () {
  this.timeout(300_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'tidewater-duckdb-generations-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps every row of the live generation exactly once while the rebuild commits and checkpoints beside it', async () => {
    const rows = 60_000;
    const rounds = 6;
    const perBatch = 5_000;
    const path = join(dir, 'w.duckdb');
    const config = warehouseSinkConfig.parse({ name: 'wh', type: 'warehouse', engine: 'duckdb', path });
    const live = new WarehouseSink(config, { logger: quiet, dataDir: dir }, new DeadLetterStore(dir, 'wh'));
    await live.open();
    const rebuild = new WarehouseSink(config, { logger: quiet, dataDir: dir }, new DeadLetterStore(dir, 'wh'));
    rebuild.useGeneration(2);
    await rebuild.open();
    // Checkpoints often (the instance is shared in the process: this connection sets it for both sinks).
    const tuner = new DuckDbEngine(path);
    await tuner.open();
    await tuner.query(`SET GLOBAL checkpoint_threshold = '256KB'`);
    await tuner.close();
    const image = (id: number, round: number) => makeEvent({ key: { id }, op: round === 0 ? 'c' : 'r', after: { id, round, pad: 'x'.repeat(40) }, version: makeVersion(BigInt(round + 1), id) });
    let offset = 0;
    let rebuildOffset = 0;
    let stop = false;
    try {
      // The rebuild: commits of its own the whole time (each may checkpoint the shared file).
      const rebuilding = (async () => {
        for (let step = 0; !stop; step++) {
          const batch = Array.from({ length: 500 }, (_, i) => image((step * 500 + i) % rows, 1 + Math.floor(step / 40)));
          await rebuild.write(asRecords(batch, 0, rebuildOffset));
          rebuildOffset += batch.length;
          await rebuild.flush();
        }
      })();
      // Commits on another connection, each one a checkpoint at this threshold (as the rebuild's commits are); an explicit
      // CHECKPOINT, as the sink's out-of-memory recovery runs, is refused while another write transaction is open.
      const checkpointing = (async () => {
        const other = new DuckDbEngine(path);
        await other.open();
        try {
          while (!stop) {
            await other.query('CREATE OR REPLACE TABLE scratch AS SELECT range AS n FROM range(20000)');
            await other.query('CHECKPOINT').catch(() => undefined);
            await new Promise((resolve) => setTimeout(resolve, 5));
          }
        } finally {
          await other.close();
        }
      })();
      // The live generation: every row re-sent with a newer version each round (what a resync does).
      for (let round = 0; round < rounds; round++) {
        for (let first = 0; first < rows; first += perBatch) {
          const batch = Array.from({ length: perBatch }, (_, i) => image(first + i, round));
          await live.write(asRecords(batch, 0, offset));
          offset += batch.length;
          await live.flush();
        }
      }
      stop = true;
      await Promise.all([rebuilding, checkpointing]);
    } finally {
      stop = true;
      await live.close();
      await rebuild.close();
    }
    const engine = new DuckDbEngine(path);
    await engine.open();
    try {
      const [counts] = await engine.query('SELECT count(*) AS n, count(DISTINCT id) AS keys, min(round) AS oldest FROM public__items WHERE NOT _cdc_deleted');
      assert.deepEqual(
        { rows: Number(counts.n), keys: Number(counts.keys), oldest: Number(counts.oldest) },
        { rows, keys: rows, oldest: rounds - 1 },
        'each row once, at its newest image',
      );
    } finally {
      await engine.close();
    }
  });
});
