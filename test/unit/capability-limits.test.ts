import { describe, expect, it } from 'vitest';
import { derivedPairsExceed } from '../../shared/language-pairs.ts';
import {
  CAPABILITY_LIMITS,
  languageCapabilitiesSchema,
  nodeRegisterSchema,
} from '../../shared/protocol/node-messages.ts';
import { describeIssues } from '../../shared/protocol/validation.ts';
import { registerBody } from '../support/node-fixtures.ts';

/** Issue 11 defect 3: the caps that bound what one registration can cost (PROTOCOL.md "Limits"). */

const langs = (n: number) => Array.from({ length: n }, (_, i) => `l${i}`);
const pairs = (n: number) => Array.from({ length: n }, (_, i) => ({ src: `s${i}`, tgt: 'en' }));
const nmt = (languages: string[], extra: Record<string, unknown> = {}) => ({
  model_id: 'm2m',
  languages,
  rule: 'any_to_any' as const,
  ...extra,
});

/** The INVALID_MESSAGE text a registration with these language capabilities gets. */
function refusal(caps: Record<string, unknown>): string {
  const result = nodeRegisterSchema.safeParse(registerBody({ language_capabilities: caps }));
  return result.success ? 'accepted' : describeIssues(result.error);
}

describe('capability caps', () => {
  it('128 codes per language list, naming the list', () => {
    expect(refusal({ asr_languages: langs(128) })).toBe('accepted');
    expect(refusal({ asr_languages: langs(129) })).toMatch(/^language_capabilities\.asr_languages: Too big/);
    expect(refusal({ nmt_capabilities: [nmt(langs(129))] })).toMatch(
      /^language_capabilities\.nmt_capabilities\.0\.languages: Too big/,
    );
  });

  it('4,096 entries per pair list', () => {
    expect(refusal({ supported_language_pairs: pairs(4096) })).toBe('accepted');
    expect(refusal({ supported_language_pairs: pairs(4097) })).toMatch(
      /^language_capabilities\.supported_language_pairs: Too big/,
    );
    expect(refusal({ nmt_capabilities: [nmt(['en'], { blocked_pairs: pairs(4097) })] })).toMatch(
      /^language_capabilities\.nmt_capabilities\.0\.blocked_pairs: Too big/,
    );
  });

  it('64 nmt entries', () => {
    expect(refusal({ nmt_capabilities: Array.from({ length: 64 }, () => nmt(['en', 'zh'])) })).toBe(
      'accepted',
    );
    expect(refusal({ nmt_capabilities: Array.from({ length: 65 }, () => nmt(['en', 'zh'])) })).toMatch(
      /^language_capabilities\.nmt_capabilities: Too big/,
    );
  });

  it('4,096 derived pairs per node: 64 codes any_to_any (4,032) pass, 65 (4,160) are refused naming the field', () => {
    expect(refusal({ nmt_capabilities: [nmt(langs(64))] })).toBe('accepted');
    expect(refusal({ nmt_capabilities: [nmt(langs(65))] })).toBe(
      `language_capabilities.nmt_capabilities: derives more than ${CAPABILITY_LIMITS.derivedPairs} directed NMT pairs (the limit per node)`,
    );
    // spread over entries: the union counts
    expect(refusal({ nmt_capabilities: [nmt(langs(64)), nmt(langs(64).map((l) => `x${l}`))] })).toMatch(
      /nmt_capabilities: derives more than 4096/,
    );
    // without NMT rules the pairs are asr × semantic
    expect(refusal({ asr_languages: langs(100), semantic_languages: langs(100) })).toMatch(
      /^language_capabilities\.semantic_languages: derives more than 4096/,
    );
  });

  it('counts no further than the limit', () => {
    expect(derivedPairsExceed({ nmt_capabilities: [nmt(langs(128))] }, 10)).toBe(true);
    expect(derivedPairsExceed({ nmt_capabilities: [nmt(langs(4))] }, 12)).toBe(false);
    expect(derivedPairsExceed({ nmt_capabilities: [nmt(langs(4))] }, 11)).toBe(true);
  });

  it('a heartbeat is held to the same caps', () => {
    const result = languageCapabilitiesSchema.safeParse({ nmt_capabilities: [nmt(langs(65))] });
    expect(result.success).toBe(false);
  });
});
