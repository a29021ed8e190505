import { describe, expect, it } from 'vitest';
import { SwitchboardError } from '../../shared/errors.ts';
import type { ServiceType } from '../../shared/protocol/node-messages.ts';
import type { SnapshotEntry } from '../../shared/snapshot-entry.ts';
import {
  FEATURE_EXPANSION,
  UnknownFeatureError,
  expandFeatures,
  validateFeatures,
} from '../../services/selector/feature-expansion.ts';
import {
  requiredServiceTypes,
  type RejectReason,
  type SelectionRequest,
} from '../../services/selector/selection.ts';
import { FULL, node, fleet, request, run, checkInvariants } from '../support/selection-fixtures.ts';

// ---------------------------------------------------------------------------------------------
// Features and service types

describe('features', () => {
  it('the expansion table covers every node flag', () => {
    expect(Object.keys(FEATURE_EXPANSION).sort()).toEqual(
      Object.values(FEATURE_EXPANSION)
        .map((r) => r.flag)
        .sort(),
    );
  });

  it.each<[string[], string[], ServiceType[]]>([
    [['emotion_detection'], ['emotion_detection'], ['asr']],
    [['speech_rate_detection'], ['speech_rate_detection'], ['asr']],
    [['speaker_identification'], ['speaker_identification'], ['tone']],
    [['voice_style_detection'], ['voice_style_detection'], ['tone']],
    [['speech_rate_control'], ['speech_rate_control'], ['tts']],
    [['persona_adaptation'], ['persona_adaptation'], []],
    [
      ['speaker_identification', 'voice_style_detection', 'speaker_identification'],
      ['speaker_identification', 'voice_style_detection'],
      ['tone'],
    ],
  ])('expandFeatures(%j)', (names, flags, types) => {
    expect(expandFeatures(names)).toEqual({ flags, types });
  });

  it.each([[['nope']], [['emotion_detection', 'constructor']], [['__proto__']], [['toString']]])(
    'an unknown feature %j throws a 400 error naming it',
    (names) => {
      const call = (): unknown => validateFeatures(names);
      expect(call).toThrow(UnknownFeatureError);
      try {
        call();
      } catch (err) {
        expect(err).toBeInstanceOf(SwitchboardError);
        expect((err as SwitchboardError).status).toBe(400);
        expect((err as SwitchboardError).code).toBe('INVALID_MESSAGE');
        expect((err as UnknownFeatureError).unknown).toEqual(names.filter((n) => n !== 'emotion_detection'));
      }
      expect(() => run(fleet(node('a')), { features: names })).toThrow(UnknownFeatureError);
    },
  );

  it.each<[Partial<SelectionRequest>, ServiceType[]]>([
    [{}, ['asr', 'nmt', 'tts']],
    [{ pipeline: { asr: false, nmt: true, tts: false, semantic: false, tone: false } }, ['nmt']],
    [{ pipeline: { ...FULL, semantic: true, tone: true } }, ['asr', 'nmt', 'tts', 'semantic', 'tone']],
    [
      {
        pipeline: { asr: false, nmt: true, tts: false, semantic: false, tone: false },
        features: ['emotion_detection', 'speaker_identification', 'persona_adaptation'],
      },
      ['nmt', 'asr', 'tone'],
    ],
  ])('requiredServiceTypes(%j)', (req, types) => {
    expect(requiredServiceTypes(request(req))).toEqual(types);
  });

  it.each<[string, string[], Partial<SnapshotEntry>, RejectReason | null]>([
    ['flag present, type ready', ['speaker_identification'], { features: ['speaker_identification'] }, null],
    [
      'flag missing',
      ['speaker_identification'],
      { features: ['voice_style_detection'] },
      'feature_unsupported',
    ],
    [
      'type missing (tone not ready) comes before the flag',
      ['speaker_identification'],
      { types: ['asr', 'nmt', 'tts'], features: [] },
      'model_not_available',
    ],
    [
      'type missing, flag present',
      ['voice_style_detection'],
      { types: ['asr', 'nmt', 'tts'], features: ['voice_style_detection'] },
      'model_not_available',
    ],
    [
      'flag only feature',
      ['persona_adaptation'],
      { types: ['asr', 'nmt', 'tts'], features: [] },
      'feature_unsupported',
    ],
    [
      'flag only feature present',
      ['persona_adaptation'],
      { types: ['asr', 'nmt', 'tts'], features: ['persona_adaptation'] },
      null,
    ],
  ])('%s', (_name, features, over, reason) => {
    const index = fleet(node('n', over));
    const r = run(index, { features });
    checkInvariants(index, r);
    expect(r.breakdown.rejected).toEqual(reason ? { [reason]: 1 } : {});
  });

  it('a feature type joins the pipeline: emotion_detection on a text job needs ASR ready', () => {
    const text = { asr: false, nmt: true, tts: false, semantic: false, tone: false };
    const index = fleet(
      node('nmt-only', { types: ['nmt'], features: ['emotion_detection'] }),
      node('both', { types: ['asr', 'nmt'], features: ['emotion_detection'] }),
    );
    const r = run(index, { pipeline: text, features: ['emotion_detection'] });
    expect(r.breakdown.rejected).toEqual({ model_not_available: 1 });
    expect(r.ranked).toEqual(['both']);
  });
});

// ---------------------------------------------------------------------------------------------
// Per-node reasons

describe('select: node state', () => {
  it.each<[string, Partial<SnapshotEntry>, Partial<SelectionRequest>, RejectReason | null]>([
    ['gpu required, none', { gpu: false }, {}, 'gpu_unavailable'],
    ['gpu not required', { gpu: false }, { requireGpu: false }, null],
    ['public job, node refuses', { public: false }, {}, 'not_accepting_public'],
    ['private job, node refuses public', { public: false }, { public: false }, null],
    ['draining', { draining: true }, {}, 'draining'],
    ['registering', { status: 'registering' }, {}, 'status_not_ready'],
    ['degraded', { status: 'degraded' }, {}, 'status_not_ready'],
    ['offline and draining', { status: 'offline', draining: true }, {}, 'offline'],
  ])('%s', (_name, over, req, reason) => {
    const index = fleet(node('n', over));
    const r = run(index, req);
    expect(r.breakdown.rejected).toEqual(reason ? { [reason]: 1 } : {});
  });

  it.each([[['b']], [['x', 'y', 'b']], [Array.from({ length: 20 }, (_, i) => (i === 13 ? 'b' : `x${i}`))]])(
    'excluded %j',
    (excludeNodeIds) => {
      const index = fleet(node('a'), node('b'));
      const r = run(index, { excludeNodeIds });
      expect(r.breakdown.rejected).toEqual({ excluded: 1 });
      expect(r.breakdown.samples).toEqual({ excluded: ['b'] });
      expect(r.ranked).toEqual(['a']);
    },
  );

  it.each<[string, Partial<SnapshotEntry>, { running: number; reserved: number } | undefined, boolean]>([
    ['idle', {}, undefined, true],
    ['snapshot full by running', { running: 4 }, undefined, false],
    ['snapshot full by running + reserved', { running: 2, reserved: 2 }, undefined, false],
    ['snapshot 3/4', { running: 2, reserved: 1 }, undefined, true],
    ['known reservations fill it', { running: 1 }, { running: 0, reserved: 3 }, false],
    ['known running fills it', { reserved: 1 }, { running: 3, reserved: 0 }, false],
    ['known lower than snapshot: the snapshot counts', { running: 3 }, { running: 1, reserved: 0 }, true],
    // max per count, not a sum: a reservation of ours that the snapshot already shows counts once
    ['known = snapshot counts once', { running: 1, reserved: 2 }, { running: 1, reserved: 2 }, true],
    ['max 0 never takes a job', { max: 0 }, undefined, false],
  ])('capacity: %s', (_name, over, known, ok) => {
    const index = fleet(node('n', over));
    const r = run(index, {}, { knownLoad: (id) => (id === 'n' ? known : undefined) });
    expect(r.breakdown.rejected).toEqual(ok ? {} : { capacity_exceeded: 1 });
  });

  it.each<[string, Partial<SnapshotEntry>, number, boolean]>([
    ['below', { cpu: 84, gpuPct: 84, mem: 84 }, 85, true],
    ['cpu at threshold', { cpu: 85 }, 85, false],
    ['gpu at threshold', { gpuPct: 85 }, 85, false],
    ['mem over', { mem: 99 }, 85, false],
    ['gpu not reported', { gpuPct: null }, 85, true],
    ['gpu not reported, cpu over', { gpuPct: null, cpu: 90 }, 85, false],
    ['custom threshold', { cpu: 60 }, 50, false],
  ])('resource threshold: %s', (_name, over, threshold, ok) => {
    const index = fleet(node('n', over));
    const r = run(index, {}, { resourceThreshold: threshold });
    expect(r.breakdown.rejected).toEqual(ok ? {} : { resource_threshold_exceeded: 1 });
  });
});
