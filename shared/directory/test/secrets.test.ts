import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateSecret } from '@hearth/directory';

describe('generateSecret', () => {
  it('gives base64url secrets of the asked entropy that never start with - or _ (they go on command lines)', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const s = generateSecret();
      assert.match(s, /^[A-Za-z0-9][A-Za-z0-9_-]{31}$/);
      seen.add(s);
    }
    assert.equal(seen.size, 5000);
    assert.equal(Buffer.from(generateSecret(12), 'base64url').length, 12);
  });
});
