import { describe, expect, it } from 'vitest';
import { canonicalJson, capabilityPart, servicesPart } from '../../shared/capability-digest.ts';

describe('capability digest', () => {
  it('ignores key order, list order and null/absent fields', () => {
    const a = {
      asr_languages: ['zh', 'en'],
      tts_languages: null,
      nmt: [{ rule: 'x', languages: ['a', 'b'] }, { rule: 'y' }],
    };
    const b = { nmt: [{ rule: 'y' }, { languages: ['b', 'a'], rule: 'x' }], asr_languages: ['en', 'zh'] };
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(capabilityPart(a).digest).toBe(capabilityPart(b).digest);
  });

  it('changes when a value changes', () => {
    expect(capabilityPart({ l: ['en'] }).digest).not.toBe(capabilityPart({ l: ['en', 'zh'] }).digest);
    expect(capabilityPart({ ready: true }).digest).not.toBe(capabilityPart({ ready: false }).digest);
  });

  it('keeps volatile service fields (mem_mb, warmup_ms, last_error) and free-text reasons out of the digest', () => {
    const service = { service_id: 's', type: 'asr', device: 'gpu', status: 'running' } as const;
    const a = servicesPart([{ ...service, mem_mb: 100 }], [{ type: 'asr', ready: true, reason: 'warm' }]);
    const b = servicesPart(
      [{ ...service, mem_mb: 900, warmup_ms: 5, last_error: 'x' }],
      [{ type: 'asr', ready: true, reason: 'hot' }],
    );
    expect(a.digest).toBe(b.digest);
    const c = servicesPart([{ ...service, status: 'stopped' }], [{ type: 'asr', ready: true }]);
    expect(c.digest).not.toBe(a.digest);
  });

  it('is a 27-character base64url string', () => {
    expect(capabilityPart({}).digest).toMatch(/^[A-Za-z0-9_-]{27}$/);
  });
});
