import { strict as assert } from 'node:assert';
import { parseCheckpoint, serializeCheckpoint } from '../../connectors/postgres/checkpoint';
import { parseLsn } from '../../connectors/postgres/lsn';

describe('Postgres source checkpoint', () => {
  it('is the plain LSN text while streaming, readable by anyone', () => {
    const text = serializeCheckpoint({ position: parseLsn('1/2A') });
    assert.equal(text, '1/2A');
    assert.deepEqual(parseCheckpoint(text), { position: parseLsn('1/2A') });
  });

  it('carries snapshot progress (tables done, last key read) through a round trip', () => {
    const checkpoint = {
      position: parseLsn('0/16B3748'),
      snapshot: {
        position: parseLsn('0/16B3748'),
        tables: {
          'public.a': { done: true, rows: 10 },
          'public.b': { done: false, rows: 500, afterKey: ['42', 'x:y'] },
        },
      },
    };
    assert.deepEqual(parseCheckpoint(serializeCheckpoint(checkpoint)), checkpoint);
  });

  it('rejects a damaged checkpoint with a message that shows it', () => {
    assert.throws(() => parseCheckpoint('{"lsn": "0/1", '), /malformed Postgres source checkpoint "\{\\"lsn\\": \\"0\/1\\", "/);
    assert.throws(() => parseCheckpoint('nonsense'), /malformed Postgres LSN "nonsense"/);
  });
});
