import { strict as assert } from 'node:assert';
import { UndecodableSlotTracker } from '../../connectors/postgres/undecodable-slot';

// A slot is stuck only when the same start position fails twice in a row with WAL Postgres cannot decode.
describe('UndecodableSlotTracker', () => {
  const filenode = (() => {
    const error = new Error('source s (postgres, slot x): wrapped');
    error.cause = new Error('could not map filenode "base/16384/16433" to relation OID');
    return error;
  })();

  it('calls a slot stuck after two failures at one position, naming the error found along the cause chain', () => {
    const tracker = new UndecodableSlotTracker();
    tracker.noteAttemptEnd(100n, filenode);
    assert.equal(tracker.stuckAt(100n), null, 'one failure may be a coincidence');
    tracker.noteAttemptEnd(100n, filenode);
    assert.match(tracker.stuckAt(100n)!.message, /could not map filenode "base\/16384\/16433"/);
    assert.equal(tracker.stuckAt(200n), null, 'another position is not stuck');
  });

  it('starts over when the stream moved on, ended otherwise, or failed for another reason; not when it never streamed', () => {
    const tracker = new UndecodableSlotTracker();
    tracker.noteAttemptEnd(100n, filenode);
    tracker.noteAttemptEnd(150n, filenode);
    assert.equal(tracker.stuckAt(150n), null, 'progress between the failures');
    tracker.noteAttemptEnd(150n, new Error('Connection terminated'));
    tracker.noteAttemptEnd(150n, filenode);
    assert.equal(tracker.stuckAt(150n), null, 'another failure between them');
    tracker.noteAttemptEnd(150n, new Error('publication "p" does not exist'));
    tracker.noteAttemptEnd(null, new Error('connect ECONNREFUSED'));
    tracker.noteAttemptEnd(150n, new Error('publication "p" does not exist'));
    assert.ok(tracker.stuckAt(150n), 'an attempt that failed before streaming changes nothing');
  });

  it('keeps one tracker per server and slot across Source instances', () => {
    assert.equal(UndecodableSlotTracker.of('h:5432', 'a'), UndecodableSlotTracker.of('h:5432', 'a'));
    assert.notEqual(UndecodableSlotTracker.of('h:5432', 'a'), UndecodableSlotTracker.of('h:5433', 'a'));
  });
});
