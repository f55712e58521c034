import { strict as assert } from 'node:assert';
import { parseCheckpoint, serializeCheckpoint, withCheckpointEpoch } from '../../connectors/mysql/checkpoint';

// The MySQL source epoch rides with the checkpoint (issue 12.2): epoch 0 keeps the older text.
describe('MySQL checkpoint with a source epoch', () => {
  const position = { file: 'binlog.000001', offset: 342, gtid: '0-1-7' };

  it('epoch 0 (or none) serializes exactly as before epochs existed', () => {
    assert.equal(serializeCheckpoint({ position }), 'binlog.000001:342@0-1-7');
    assert.equal(serializeCheckpoint({ position, epoch: 0 }), 'binlog.000001:342@0-1-7');
    assert.equal(parseCheckpoint('binlog.000001:342@0-1-7').epoch, undefined);
  });

  it('a later epoch round-trips, with plain positions and with snapshot or resync progress', () => {
    assert.equal(serializeCheckpoint({ position, epoch: 2 }), 'epoch=2;binlog.000001:342@0-1-7');
    assert.deepEqual(parseCheckpoint('epoch=2;binlog.000001:342@0-1-7'), { position, epoch: 2 });
    const snapshotting = { position, epoch: 3, snapshot: { position, tables: { 'shop.a': { done: false, rows: 10, afterKey: [10] } } } };
    assert.deepEqual(parseCheckpoint(serializeCheckpoint(snapshotting)), snapshotting);
  });

  it('withCheckpointEpoch stamps or replaces the epoch of a checkpoint text', () => {
    assert.equal(withCheckpointEpoch('binlog.000001:342@0-1-7', 1), 'epoch=1;binlog.000001:342@0-1-7');
    assert.equal(withCheckpointEpoch('epoch=1;binlog.000001:342@0-1-7', 2), 'epoch=2;binlog.000001:342@0-1-7');
    assert.equal(withCheckpointEpoch('epoch=1;binlog.000001:342@0-1-7', 0), 'binlog.000001:342@0-1-7');
  });
});
