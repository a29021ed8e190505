import { describe, expect, it } from 'vitest';
import { issueNodeToken, oneOf, safeEqual, verifyNodeToken } from '../../shared/node-token.ts';

describe('node tokens', () => {
  const secret = 'a-secret-of-sufficient-length';
  const claims = (nodeId: string) => ({ nodeId, generation: 3, expiresAt: 1_900_000_000_000 });

  it('verifies to the claims it was issued with, on any replica with the secret', () => {
    expect(verifyNodeToken([secret], issueNodeToken(secret, claims('node-1a2b3c4d')))).toEqual(
      claims('node-1a2b3c4d'),
    );
    expect(verifyNodeToken([secret], issueNodeToken(secret, claims('a.b:c-d')))).toEqual(claims('a.b:c-d'));
    const never = { nodeId: 'n.1', generation: 0, expiresAt: 0 };
    expect(verifyNodeToken([secret], issueNodeToken(secret, never))).toEqual(never);
  });

  it('rotation: a token of any listed secret verifies; the first signs', () => {
    const old = issueNodeToken('the-previous-secret-value', claims('node-a'));
    expect(verifyNodeToken([secret, 'the-previous-secret-value'], old)).toEqual(claims('node-a'));
    expect(verifyNodeToken([secret], old)).toBeNull();
  });

  it('rejects another secret, a tampered id, generation, expiry or MAC, garbage, and nt1 tokens', () => {
    const token = issueNodeToken(secret, claims('node-a'));
    expect(verifyNodeToken(['another-secret-entirely'], token)).toBeNull();
    expect(verifyNodeToken([secret], token.replace('node-a', 'node-b'))).toBeNull();
    expect(verifyNodeToken([secret], token.replace('.3.', '.4.'))).toBeNull();
    expect(verifyNodeToken([secret], token.replace('.1900000000000.', '.1999999999999.'))).toBeNull();
    expect(verifyNodeToken([secret], `${token.slice(0, -2)}xx`)).toBeNull();
    for (const junk of ['', 'nt2.', 'nt2....', 'xyz', 'nt2.node-a', 'nt2.node-a.x.1.mac', 'nt1.node-a.mac'])
      expect(verifyNodeToken([secret], junk)).toBeNull();
    expect(verifyNodeToken([], token)).toBeNull();
  });

  it('compares in constant time and exactly', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abd')).toBe(false);
    expect(safeEqual('abc', 'abcd')).toBe(false);
    expect(oneOf(['k1-aaaaaaaa', 'k2-bbbbbbbb'], 'k2-bbbbbbbb')).toBe(true);
    expect(oneOf(['k1-aaaaaaaa'], 'k2-bbbbbbbb')).toBe(false);
  });
});
