import assert from 'node:assert/strict';
import { joinableRequest } from '../../connectors/shared/resync-join';
import { ResyncTask } from '../../connectors/shared/source-checkpoint';

const task = (requestId: string, table: string, extra: Partial<ResyncTask<string>> = {}): ResyncTask<string> => ({ requestId, table, rows: 0, ...extra });

describe('resync requests that join a waiting one (resync-join.ts)', () => {
  const queue = [task('A', 'public.a', { rows: 40, afterKey: ['40'] }), task('A', 'public.b'), task('B', 'public.a'), task('B', 'public.b'), task('C', 'public.c', { where: 'id > 5' })];

  it('joins the request whose not-started tasks cover every table asked for, with the same condition', () => {
    assert.equal(joinableRequest(queue, ['public.a'], undefined), 'B');
    assert.equal(joinableRequest(queue, ['public.b', 'public.a'], undefined), 'B');
    assert.equal(joinableRequest(queue, ['public.b'], undefined), 'A', 'the first waiting request that covers it');
    assert.equal(joinableRequest(queue, ['public.c'], 'id > 5'), 'C');
  });

  it('never joins the task in progress, a task that has read a chunk, another condition or a partial cover', () => {
    assert.equal(joinableRequest([task('A', 'public.a')], ['public.a'], undefined), null, 'tasks[0] may have a chunk in flight');
    assert.equal(joinableRequest([task('X', 'public.x'), task('A', 'public.a', { rows: 0, afterKey: ['7'] })], ['public.a'], undefined), null);
    assert.equal(joinableRequest([task('X', 'public.x'), task('A', 'public.a', { rows: 20 })], ['public.a'], undefined), null);
    assert.equal(joinableRequest(queue, ['public.c'], undefined), null);
    assert.equal(joinableRequest(queue, ['public.c'], 'id > 6'), null);
    assert.equal(joinableRequest(queue, ['public.a', 'public.c'], undefined), null, 'tables split over two requests');
  });
});
