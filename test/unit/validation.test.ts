import { describe, expect, it } from 'vitest';
import { nodeHeartbeatSchema, nodeRegisterSchema } from '../../shared/protocol/node-messages.ts';
import { parseOrThrow } from '../../shared/protocol/validation.ts';
import { heartbeatBody, registerBody } from '../support/node-fixtures.ts';

describe('protocol validation', () => {
  it('accepts the fixtures and drops unknown fields', () => {
    const hb = parseOrThrow(nodeHeartbeatSchema, { ...heartbeatBody('n'), extra: 1 });
    expect(hb).not.toHaveProperty('extra');
    expect(parseOrThrow(nodeRegisterSchema, registerBody()).node_id).toBe('node-test-1');
  });

  it('names the field path of every problem (up to 3)', () => {
    const body = registerBody({ platform: 7, hardware: { cpu_cores: -1, memory_gb: 1 } });
    expect(() => parseOrThrow(nodeRegisterSchema, body)).toThrow(/platform: .*; hardware\.cpu_cores: /);
    const nested = registerBody({
      language_capabilities: { nmt_capabilities: [{ model_id: 'm', languages: [], rule: 'all' }] },
    });
    expect(() => parseOrThrow(nodeRegisterSchema, nested)).toThrow(
      /language_capabilities\.nmt_capabilities\.0\.rule/,
    );
  });

  it('validates node ids', () => {
    for (const bad of ['', 'has space', 'x'.repeat(129), 'ümlaut']) {
      expect(() => parseOrThrow(nodeRegisterSchema, registerBody({ node_id: bad })), bad).toThrow(
        /^node_id: /,
      );
    }
  });
});
