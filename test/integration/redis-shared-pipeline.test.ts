import { strict as assert } from 'node:assert';
import Redis from 'ioredis';
import { SHARED_UP_TO_COMMANDS, SharedPipeline } from '../../sinks/redis/shared-pipeline';
import { RedisServer, startRedis, stopAll } from '../support/servers';

describe('Redis SharedPipeline: batches written in the same turn share one pipeline', function () {
  this.timeout(30_000);
  let server: RedisServer;
  let redis: Redis;
  before(async () => {
    server = await startRedis();
    redis = new Redis(server.url);
  });
  after(async () => {
    redis.disconnect();
    await stopAll();
  });

  it('sends the small batches of one turn in one pipeline, each getting its own replies, a failure only its own', async () => {
    let pipelines = 0;
    const shared = new SharedPipeline(() => (pipelines++, redis.pipeline()));
    await redis.set('shared:text', 'not a number');
    await redis.set('shared:c', '3');
    const [a, b, c] = await Promise.all([
      shared.send((p) => p.set('shared:a', '1'), 1),
      shared.send((p) => p.incr('shared:text'), 1),
      shared.send((p) => p.incr('shared:c'), 1),
    ]);
    assert.equal(pipelines, 1, 'one pipeline for the three senders');
    assert.deepEqual(a, [[null, 'OK']]);
    assert.equal(b.length, 1);
    assert.match(String(b[0][0]), /not an integer/, 'the failing command reaches its own sender');
    assert.deepEqual(c, [[null, 4]]);

    await shared.send((p) => p.get('shared:a'), 1);
    assert.equal(pipelines, 2, 'a send in a later turn goes in the next pipeline');
  });

  it(`sends a batch of more than ${SHARED_UP_TO_COMMANDS} command(s) in a pipeline of its own, so it never waits for others' replies`, async () => {
    let pipelines = 0;
    const shared = new SharedPipeline(() => (pipelines++, redis.pipeline()));
    const [big, small] = await Promise.all([
      shared.send((p) => p.set('shared:big', '1').get('shared:big'), 2),
      shared.send((p) => p.get('shared:big'), 1),
    ]);
    assert.deepEqual(big, [[null, 'OK'], [null, '1']]);
    assert.equal(small.length, 1);
    assert.equal(pipelines, 2);
  });

  it('rejects every sender of a pipeline that could not be sent', async () => {
    const closed = new Redis(server.url);
    closed.on('error', () => undefined);
    await closed.ping();
    closed.disconnect(); // closed for good: no reconnect
    const shared = new SharedPipeline(() => closed.pipeline());
    const sends = [shared.send((p) => p.get('x'), 1), shared.send((p) => p.get('y'), 1)];
    const outcomes = await Promise.allSettled(sends);
    for (const outcome of outcomes) {
      // ioredis reports a closed connection either by rejecting exec() or as each command's error.
      if (outcome.status === 'fulfilled') assert.match(String(outcome.value[0][0]), /closed|writeable|connect/i);
      else assert.match(String(outcome.reason), /closed|writeable|connect/i);
    }
  });
});
