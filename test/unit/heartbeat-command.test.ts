import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeyBuilder } from '../../shared/keys.ts';
import { HeartbeatTemplate } from '../../shared/store/heartbeat-command.ts';
import { heartbeatKeysAndArgs, type HeartbeatWrite } from '../../shared/store/node-shard.ts';
import { encodeEvalsha } from '../../shared/store/script-command.ts';
import { TEST_NODE_POLICY } from '../support/node-fixtures.ts';

/**
 * The prebuilt heartbeat EVALSHA (shared/store/heartbeat-command.ts) must put on the wire
 * exactly the bytes of the general encoder over heartbeatKeysAndArgs: whatever the figures,
 * and whatever order the script's arguments take (the template finds them).
 */

const SHA = 'f'.repeat(40);
const keys = new KeyBuilder('sb', 16);
const policy = TEST_NODE_POLICY;
const part = (name: string) => ({ digest: `${name}-digest-ü`, blob: `{"${name}":1}` });
const svc = part('svc');
const lang = part('lang');

const figure = fc.oneof(
  fc.integer({ min: 0, max: 100 }),
  fc.double({ min: 0, max: 100, noNaN: true }),
  fc.constantFrom(0, -0, 100, 99.5, 10.377358490566039, 5e-324),
);
const write = fc.record({
  nodeId: fc.stringMatching(/^[A-Za-z0-9._:-]{1,40}$/),
  timestamp: fc.oneof(fc.nat(), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
  cpu: figure,
  gpu: fc.option(figure),
  gpuMem: fc.option(figure),
  mem: figure,
  running: fc.integer({ min: 0, max: 100000 }),
  anyReady: fc.boolean(),
  withLang: fc.boolean(),
});

describe('HeartbeatTemplate', () => {
  it('encodes what encodeEvalsha(heartbeatKeysAndArgs(…, withBlobs false)) encodes', () => {
    fc.assert(
      fc.property(write, fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (w, now) => {
        const h: HeartbeatWrite = { ...w, svc, lang: w.withLang ? lang : null, models: null, cached: true };
        const k = keys.forNode(h.nodeId);
        const template = HeartbeatTemplate.build(SHA, 5, heartbeatKeysAndArgs, k, h, policy);
        expect(template).not.toBeNull();
        expect(template!.fits(h)).toBe(true);
        const expected = encodeEvalsha(SHA, 5, heartbeatKeysAndArgs(k, h, policy, now, false));
        expect(template!.encode(h, now).toString('latin1')).toBe(expected.toString('latin1'));
        // one template serves the node's later heartbeats
        const later = { ...h, timestamp: h.timestamp + 1, cpu: 1.25, gpu: null };
        expect(
          template!
            .encode(later, now + 5)
            .equals(encodeEvalsha(SHA, 5, heartbeatKeysAndArgs(k, later, policy, now + 5, false))),
        ).toBe(true);
        expect(template!.fits({ ...h, svc: part('other') })).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it('follows the argument order of whatever builds the argument list, or declines', () => {
    const h: HeartbeatWrite = {
      nodeId: 'n-1',
      timestamp: 17,
      cpu: 3,
      gpu: null,
      gpuMem: 4.5,
      mem: 6,
      running: 1,
      anyReady: true,
      svc,
      lang: null,
      models: null,
      cached: true,
    };
    const k = keys.forNode('n-1');
    const reversed: typeof heartbeatKeysAndArgs = (...a) => {
      const all = heartbeatKeysAndArgs(...a);
      return [...all.slice(0, 5), ...all.slice(5).reverse()];
    };
    const t = HeartbeatTemplate.build(SHA, 5, reversed, k, h, policy)!;
    expect(t.encode(h, 99).equals(encodeEvalsha(SHA, 5, reversed(k, h, policy, 99, false)))).toBe(true);
    // a figure sent transformed (not as the number itself) cannot be templated
    const scaled: typeof heartbeatKeysAndArgs = (kk, hh, p, now, b) =>
      heartbeatKeysAndArgs(kk, { ...hh, cpu: hh.cpu * 10 }, p, now, b);
    expect(HeartbeatTemplate.build(SHA, 5, scaled, k, h, policy)).toBeNull();
  });
});
