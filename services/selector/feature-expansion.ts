import { SwitchboardError } from '../../shared/errors.ts';
import type { FEATURE_FLAGS, ServiceType } from '../../shared/protocol/node-messages.ts';

/**
 * PROTOCOL.md "Feature expansion": what each job feature needs of a node. DATA, not code
 * branches: adding a feature is adding a row. A missing flag rejects the node as
 * `feature_unsupported`; a missing service type as `model_not_available` (the type joins the
 * job's required service types).
 */

export type FeatureFlag = (typeof FEATURE_FLAGS)[number];
/** Job feature names; today each one is named after the node flag it requires. */
export type FeatureName = FeatureFlag;

export interface FeatureRequirement {
  /** entry.features must contain it */
  readonly flag: FeatureFlag;
  /** entry.types must contain it; null = no service type needed */
  readonly type: ServiceType | null;
}

export const FEATURE_EXPANSION: Readonly<Record<FeatureName, FeatureRequirement>> = {
  emotion_detection: { flag: 'emotion_detection', type: 'asr' },
  speech_rate_detection: { flag: 'speech_rate_detection', type: 'asr' },
  speaker_identification: { flag: 'speaker_identification', type: 'tone' },
  voice_style_detection: { flag: 'voice_style_detection', type: 'tone' },
  speech_rate_control: { flag: 'speech_rate_control', type: 'tts' },
  persona_adaptation: { flag: 'persona_adaptation', type: null },
};

/** Own keys only: `constructor`, `__proto__` and friends are not features. */
export function isFeatureName(name: string): name is FeatureName {
  return Object.hasOwn(FEATURE_EXPANSION, name);
}

/** A job asked for features Switchboard does not know; the HTTP layer answers 400. */
export class UnknownFeatureError extends SwitchboardError {
  constructor(readonly unknown: readonly string[]) {
    super(
      'INVALID_MESSAGE',
      `features: unknown feature${unknown.length === 1 ? '' : 's'} ${unknown.map((n) => JSON.stringify(n)).join(', ')}; known: ${Object.keys(FEATURE_EXPANSION).join(', ')}`,
    );
  }
}

/** Checks the requested feature names; throws UnknownFeatureError naming every unknown one. */
export function validateFeatures(names: readonly string[]): FeatureName[] {
  const unknown = names.filter((name) => !isFeatureName(name));
  if (unknown.length > 0) throw new UnknownFeatureError(unknown);
  return names as FeatureName[];
}

export interface FeatureNeeds {
  /** node flags required, deduplicated, in request order */
  flags: FeatureFlag[];
  /** service types required, deduplicated, in request order */
  types: ServiceType[];
}

/** Expands requested feature names (validated here too) into node flags and service types. */
export function expandFeatures(names: readonly string[]): FeatureNeeds {
  const flags: FeatureFlag[] = [];
  const types: ServiceType[] = [];
  for (const name of validateFeatures(names)) {
    const { flag, type } = FEATURE_EXPANSION[name];
    if (!flags.includes(flag)) flags.push(flag);
    if (type !== null && !types.includes(type)) types.push(type);
  }
  return { flags, types };
}
