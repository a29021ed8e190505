import { describe, expect, it } from 'vitest';
import { languageProfile } from '../../shared/language-pairs.ts';
import {
  asrPartialSchema,
  jobResultSchema,
  nodeHeartbeatSchema,
  nodeRegisterSchema,
} from '../../shared/protocol/node-messages.ts';
import { jobRequestSchema } from '../../shared/protocol/client-messages.ts';
import { jobAssignFrame, pipelineFlags } from '../../shared/protocol/outbound-frames.ts';
import { parseOrThrow } from '../../shared/protocol/validation.ts';
import { clientFrames, schedulerE2e } from '../support/lingua-node.ts';

const pairs = (caps: Parameters<typeof languageProfile>[0]) => [...languageProfile(caps).nmtPairs].sort();

describe('the lingua client frames (test/fixtures/lingua/) are valid as recorded', () => {
  it.each(['core', 'full'] as const)('%s bundle: node_register and every heartbeat', (profile) => {
    const frames = clientFrames.profiles[profile];
    expect(parseOrThrow(nodeRegisterSchema, frames['node_register']).platform).toBe('linux');
    for (const name of ['node_heartbeat', 'node_heartbeat_after_job']) {
      if (frames[name]) expect(() => parseOrThrow(nodeHeartbeatSchema, frames[name])).not.toThrow();
    }
  });

  it('asr_partial and job_result (success and failure)', () => {
    expect(parseOrThrow(asrPartialSchema, clientFrames.asr_partial).text).toBe('你好');
    expect(parseOrThrow(jobResultSchema, clientFrames.job_result_success).success).toBe(true);
    expect(parseOrThrow(jobResultSchema, clientFrames.job_result_duplicate_utterance).error?.code).toBe(
      'PROCESSING_ERROR',
    );
  });

  it('the original scheduler\'s e2e node: platform "test"', () => {
    const reg = { ...schedulerE2e['node_register'], node_id: 'n-1' };
    expect(parseOrThrow(nodeRegisterSchema, reg).platform).toBe('test');
  });

  it('still refuses what is wrong, naming the field', () => {
    const reg = { ...clientFrames.profiles.core['node_register'], installed_services: [{ type: 'ASR!' }] };
    expect(() => parseOrThrow(nodeRegisterSchema, reg)).toThrow(/^installed_services\.0\./);
  });
});

describe('NMT pairs when a node sends no NMT rules', () => {
  it('asr_languages × semantic_languages, src ≠ tgt (the lingua scheduler)', () => {
    const caps = clientFrames.profiles.core['node_register']!['language_capabilities'] as Record<
      string,
      string[]
    >;
    expect(pairs(caps)).toEqual(['en:zh', 'zh:en']);
    expect(pairs({ asr_languages: ['en'], semantic_languages: ['en', 'zh'] })).toEqual(['en:zh']);
    expect(pairs({ asr_languages: ['en', 'zh'] })).toEqual([]);
  });

  it('explicit NMT rules win, and supported_language_pairs wins over both', () => {
    const base = { asr_languages: ['en', 'zh', 'ja'], semantic_languages: ['en', 'zh', 'ja'] };
    const rules = [{ model_id: 'm', languages: ['en', 'de'], rule: 'any_to_any' as const }];
    expect(pairs({ ...base, nmt_capabilities: rules })).toEqual(['de:en', 'en:de']);
    expect(pairs({ ...base, supported_language_pairs: [{ src: 'ja', tgt: 'en' }] })).toEqual(['ja:en']);
  });
});

describe('job_assign', () => {
  const req = (body: Record<string, unknown>) =>
    parseOrThrow(jobRequestSchema, { src_lang: 'zh', tgt_lang: 'en', ...body });
  const ctx = { jobId: 'job-1', attemptId: 1, sessionId: 'job-1', utteranceIndex: 0, timeoutMs: 60_000 };
  const frame = (body: Record<string, unknown>, traceId: string | null = null) =>
    JSON.parse(jobAssignFrame(req(body), { ...ctx, trace: { traceId, traceparent: null } })) as Record<
      string,
      unknown
    >;

  it('trace_id is always a string: the trace, else the caller, else derived from the job id', () => {
    expect(frame({ payload: { trace_id: 'mine' } }, 'abc')['trace_id']).toBe('abc');
    expect(frame({ payload: { trace_id: 'mine' } })['trace_id']).toBe('mine');
    const derived = frame({})['trace_id'];
    expect(derived).toMatch(/^[0-9a-f]{32}$/);
    expect(frame({})['trace_id']).toBe(derived);
  });

  it('audio, audio_format and sample_rate are always present with their types', () => {
    expect(frame({})).toMatchObject({ audio: '', audio_format: 'pcm16', sample_rate: 16000, dialect: null });
    expect(frame({ payload: { audio: 'AA==', audio_format: 'opus', sample_rate: 48000 } })).toMatchObject({
      audio: 'AA==',
      audio_format: 'opus',
      sample_rate: 48000,
    });
  });

  it('pipeline: every flag with its default, plus each use_<type> the request set', () => {
    expect(pipelineFlags({ use_tone: true, use_punctuation: false })).toEqual({
      use_asr: true,
      use_nmt: true,
      use_tts: true,
      use_semantic: false,
      use_tone: true,
      use_phonetic: false,
      use_lexicon: false,
      use_punctuation: false,
    });
    expect(() => req({ pipeline: { punctuation: true } })).toThrow(/^pipeline\.punctuation: /);
  });
});
