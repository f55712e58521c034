import { strict as assert } from 'node:assert';
import { parseCheckpoint, serializeCheckpoint, withCheckpointEpoch, withCheckpointOrigin } from '../../connectors/mysql/checkpoint';

// Issue 12.2 (failover): a MySQL checkpoint names the server its file:offset belongs to.
describe('MySQL checkpoint with the server its position belongs to', () => {
  const position = { file: 'binlog.000004', offset: 342, gtid: '0-1-7' };

  it('server and epoch round-trip, before the position and before snapshot JSON alike', () => {
    assert.equal(serializeCheckpoint({ position, server: '1', epoch: 2 }), 'server=1;epoch=2;binlog.000004:342@0-1-7');
    assert.deepEqual(parseCheckpoint('server=1;epoch=2;binlog.000004:342@0-1-7'), { position, server: '1', epoch: 2 });
    assert.deepEqual(parseCheckpoint('server=3e11fa47-71ca-11e1-9e33-c80aa9429562;binlog.000004:342@0-1-7'), { position, server: '3e11fa47-71ca-11e1-9e33-c80aa9429562' });
    const snapshotting = { position, server: '2', snapshot: { position, tables: { 'shop.a': { done: false, rows: 10, afterKey: [10] } } } };
    assert.deepEqual(parseCheckpoint(serializeCheckpoint(snapshotting)), snapshotting);
  });

  it('checkpoints written before servers were recorded still parse, with no server', () => {
    assert.deepEqual(parseCheckpoint('epoch=1;binlog.000004:342@0-1-7'), { position, epoch: 1 });
    assert.equal(parseCheckpoint('binlog.000004:342@0-1-7').server, undefined);
  });

  it('stamping sets the origin of a bare text, replaces an old one, and an epoch change keeps the server', () => {
    assert.equal(withCheckpointOrigin('binlog.000004:342@0-1-7', { epoch: 0, server: '2' }), 'server=2;binlog.000004:342@0-1-7');
    assert.equal(withCheckpointOrigin('server=1;epoch=1;binlog.000004:342@0-1-7', { epoch: 2, server: '2' }), 'server=2;epoch=2;binlog.000004:342@0-1-7');
    assert.equal(withCheckpointEpoch('server=1;binlog.000004:342@0-1-7', 3), 'server=1;epoch=3;binlog.000004:342@0-1-7');
  });
});
