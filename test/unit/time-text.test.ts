import assert from 'node:assert/strict';
import { withMicroseconds } from '../../connectors/shared/time-text';

describe('withMicroseconds (times as both sources print them)', () => {
  it('gives every time exactly six fractional digits, keeping the sign and longer fractions', () => {
    assert.equal(withMicroseconds('12:34:56'), '12:34:56.000000');
    assert.equal(withMicroseconds('12:34:56.5'), '12:34:56.500000');
    assert.equal(withMicroseconds('-00:00:00.5'), '-00:00:00.500000');
    assert.equal(withMicroseconds('838:59:59.123456'), '838:59:59.123456');
    assert.equal(withMicroseconds('2024-02-29T12:34:56.1'), '2024-02-29T12:34:56.100000');
    assert.equal(withMicroseconds('12:34:56.'), '12:34:56.000000');
  });
});
