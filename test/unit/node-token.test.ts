import { describe, expect, it } from 'vitest';
import { issueNodeToken, safeEqual, verifyNodeToken } from '../../shared/node-token.ts';

describe('node tokens', () => {
  const secret = 'a-secret-of-sufficient-length';

  it('verifies to the node id it was issued for, on any replica with the secret', () => {
    expect(verifyNodeToken(secret, issueNodeToken(secret, 'node-1a2b3c4d'))).toBe('node-1a2b3c4d');
    expect(verifyNodeToken(secret, issueNodeToken(secret, 'a.b:c-d'))).toBe('a.b:c-d');
  });

  it('rejects another secret, a tampered id or MAC, and garbage', () => {
    const token = issueNodeToken(secret, 'node-a');
    expect(verifyNodeToken('another-secret-entirely', token)).toBeNull();
    expect(verifyNodeToken(secret, token.replace('node-a', 'node-b'))).toBeNull();
    expect(verifyNodeToken(secret, `${token.slice(0, -2)}xx`)).toBeNull();
    for (const junk of ['', 'nt1.', 'nt1..', 'xyz', 'nt1.node-a'])
      expect(verifyNodeToken(secret, junk)).toBeNull();
  });

  it('compares in constant time and exactly', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abd')).toBe(false);
    expect(safeEqual('abc', 'abcd')).toBe(false);
  });
});
