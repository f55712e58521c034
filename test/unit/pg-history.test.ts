import { strict as assert } from 'node:assert';
import { parseCheckpoint, serializeCheckpoint, stampCheckpoint } from '../../connectors/postgres/checkpoint';
import { historyChange, parseTimelineHistory } from '../../connectors/postgres/history';
import { formatLsn, parseLsn } from '../../connectors/postgres/lsn';

// Issue 12.2 for Postgres: positions that go backwards are noticed, and the epoch travels with the checkpoint.
describe('Postgres source history and epoch', () => {
  const server = { systemId: '7321456789012345678', timeline: 1 };

  describe('checkpoint', () => {
    it('stays the plain LSN without epoch or server, and prefixes them in the plain form', () => {
      assert.equal(serializeCheckpoint({ position: parseLsn('1/2A') }), '1/2A');
      const text = serializeCheckpoint({ position: parseLsn('1/2A'), epoch: 2, server });
      assert.equal(text, 'epoch=2;server=7321456789012345678/1;1/2A');
      assert.deepEqual(parseCheckpoint(text), { position: parseLsn('1/2A'), epoch: 2, server });
    });

    it('carries epoch and server as JSON fields beside snapshot progress, so JSON readers keep working', () => {
      const checkpoint = { position: parseLsn('0/100'), snapshot: { position: parseLsn('0/100'), tables: { 'public.a': { done: false, rows: 5, afterKey: ['5'] } } }, epoch: 3, server };
      const text = serializeCheckpoint(checkpoint);
      assert.ok(text.startsWith('{'), text);
      assert.equal(JSON.parse(text).snapshot.tables['public.a'].rows, 5);
      assert.deepEqual(parseCheckpoint(text), checkpoint);
    });

    it('is stamped with the epoch and server of the attempt, replacing older ones', () => {
      const stamped = stampCheckpoint('epoch=1;server=1/1;0/10', 4, server);
      assert.deepEqual(parseCheckpoint(stamped), { position: parseLsn('0/10'), epoch: 4, server });
      assert.equal(stampCheckpoint('0/10', 0, server), 'server=7321456789012345678/1;0/10');
    });

    it('stamps a bare LSN (every streamed transaction) exactly as parsing and printing it again would', () => {
      const lsns = ['0/0', '0/10', '1/2A', 'FFFFFFFF/FFFFFFFF', '16/B374D848'];
      for (let i = 0; i < 200; i++) lsns.push(formatLsn(BigInt(Math.floor(Math.random() * 2 ** 52)) * BigInt(1 + (i % 4096))));
      for (const text of lsns) {
        for (const epoch of [0, 3]) assert.equal(stampCheckpoint(text, epoch, server), serializeCheckpoint({ ...parseCheckpoint(text), epoch, server }), text);
      }
      // Not canonical (leading zeros, lowercase): parsed and printed again, as before.
      assert.equal(stampCheckpoint('00/0a', 0, server), 'server=7321456789012345678/1;0/A');
    });

    it('rejects a damaged server field with a message that shows it', () => {
      assert.throws(() => parseCheckpoint('server=abc;0/10'), /malformed Postgres source checkpoint "server=abc;0\/10": server "abc"/);
    });
  });

  describe('historyChange', () => {
    const saved = { position: parseLsn('0/5000000'), server };
    const same = { ...server, walEnd: parseLsn('0/6000000') };

    it('lets streaming go on on the same cluster and timeline with WAL at or past the saved position', () => {
      assert.equal(historyChange(saved, same, [], 'db:5432'), null);
      assert.equal(historyChange(saved, { ...same, walEnd: parseLsn('0/5000000') }, [], 'db:5432'), null);
    });

    it('names another cluster by its system identifier', () => {
      const why = historyChange(saved, { ...same, systemId: '7000000000000000001' }, [], 'db2:5432');
      assert.match(why ?? '', /db2:5432 is another cluster \(system identifier 7000000000000000001\) than the one the saved position 0\/5000000 was read on \(7321456789012345678\)/);
    });

    it('notices WAL that ends below the saved position (restore from an older backup, lagging failover target), even without a saved server', () => {
      const why = historyChange({ position: parseLsn('0/5000000') }, { ...same, walEnd: parseLsn('0/3000000') }, [], 'db:5432');
      assert.match(why ?? '', /the WAL of db:5432 ends at 0\/3000000, below the saved position 0\/5000000/);
    });

    it('checks an interrupted snapshot by its own position', () => {
      const snapshotting = { position: parseLsn('0/1'), snapshot: { position: parseLsn('0/7000000'), tables: {} }, server };
      assert.match(historyChange(snapshotting, same, [], 'db:5432') ?? '', /below the saved position 0\/7000000/);
    });

    it('notices a timeline that forked before the saved position, and accepts one that forked after it', () => {
      const promoted = { ...same, timeline: 2, walEnd: parseLsn('0/9000000') };
      const forkedBefore = parseTimelineHistory('1\t0/4000000\tno recovery target specified\n');
      assert.match(historyChange(saved, promoted, forkedBefore, 'db:5432') ?? '', /timeline 2, which left timeline 1 at 0\/4000000, before the saved position 0\/5000000/);
      const forkedAfter = parseTimelineHistory('1\t0/5800000\tno recovery target specified\n');
      assert.equal(historyChange(saved, promoted, forkedAfter, 'db:5432'), null);
    });

    it('notices a timeline whose history does not hold the saved one', () => {
      const other = { ...same, timeline: 3 };
      assert.match(historyChange({ ...saved, server: { ...server, timeline: 2 } }, other, parseTimelineHistory('1\t0/100\tx\n'), 'db:5432') ?? '', /does not contain timeline 2/);
    });
  });

  it('reads timeline history files, comments and blank lines skipped', () => {
    assert.deepEqual(parseTimelineHistory('# comment\n1\t0/3000060\tno recovery target specified\n\n2\t1/A0\tat restore point "x"\n'), [
      { timeline: 1, switchpoint: parseLsn('0/3000060') },
      { timeline: 2, switchpoint: parseLsn('1/A0') },
    ]);
  });
});
