import { z } from 'zod';
import { NODE_ID_PATTERN } from '../keys.ts';
import { derivedPairsExceed } from '../language-pairs.ts';

/**
 * Schemas of the node wire protocol (PROTOCOL.md "Node WebSocket"). Unknown extra fields are
 * accepted and dropped; optional fields may be null.
 */

const id = z.string().min(1).max(256);
const text = z.string().max(4096);
const lang = z.string().min(1).max(35);
const percent = z.number().min(0).max(100);
const list = <T extends z.ZodType>(item: T, max = 1024) => z.array(item).max(max);

/**
 * Caps that bound what one registration or heartbeat can cost (PROTOCOL.md "Limits"): the
 * pools and index entries of a node grow with the directed pairs its languages derive.
 */
export const CAPABILITY_LIMITS = {
  /** codes per language list (asr/tts/semantic languages, an nmt entry's languages) */
  languageCodes: 128,
  /** entries per pair list (blocked_pairs, supported_pairs, supported_language_pairs) */
  pairEntries: 4096,
  /** entries of nmt_capabilities */
  nmtEntries: 64,
  /** directed NMT pairs one node's capabilities may derive */
  derivedPairs: 4096,
} as const;
const langList = list(lang, CAPABILITY_LIMITS.languageCodes);
const pairList = list(z.object({ src: lang, tgt: lang }), CAPABILITY_LIMITS.pairEntries);

export const nodeIdSchema = z.string().regex(NODE_ID_PATTERN, 'expected 1-128 characters of [A-Za-z0-9._:-]');

/**
 * Service types Switchboard's own pipeline flags name. Any other type a node reports (the
 * lingua fleet ships `phonetic`, `punctuation`, `lexicon`, …) is stored and usable as a
 * required type like these: a type is a name, never a reason to refuse a registration.
 */
export const SERVICE_TYPES = ['asr', 'nmt', 'tts', 'tone', 'semantic', 'phonetic', 'lexicon'] as const;
export const SERVICE_TYPE_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
export const serviceTypeSchema = z
  .string()
  .regex(SERVICE_TYPE_PATTERN, 'expected 1-64 of [a-z0-9_.-], starting with a letter or digit');
export type ServiceType = string;

export const FEATURE_FLAGS = [
  'emotion_detection',
  'voice_style_detection',
  'speech_rate_detection',
  'speech_rate_control',
  'speaker_identification',
  'persona_adaptation',
] as const;

export const hardwareSchema = z.object({
  cpu_cores: z.number().int().min(0).max(100000),
  memory_gb: z.number().min(0).max(1e6),
  gpus: list(z.object({ name: text, memory_gb: z.number().min(0).max(1e6) }), 256).nullish(),
});

export const installedModelSchema = z.object({
  model_id: id,
  /** asr | nmt | tts | emotion | other, or any kind a newer client reports */
  kind: z.string().min(1).max(64),
  src_lang: lang.nullish(),
  tgt_lang: lang.nullish(),
  dialect: text.nullish(),
  version: text,
  enabled: z.boolean().nullish(),
});

export const installedServiceSchema = z.object({
  service_id: id,
  type: serviceTypeSchema,
  /** gpu | cpu (other values are kept as reported) */
  device: z.string().min(1).max(64),
  /** running | stopped | error (other values are kept as reported) */
  status: z.string().min(1).max(64),
  version: text.nullish(),
  model_id: id.nullish(),
  engine: text.nullish(),
  mem_mb: z.number().min(0).nullish(),
  warmup_ms: z.number().min(0).nullish(),
  last_error: text.nullish(),
});

export const capabilityByTypeSchema = z.object({
  type: serviceTypeSchema,
  ready: z.boolean(),
  reason: text.nullish(),
  ready_impl_ids: list(id).nullish(),
});

export const nmtCapabilitySchema = z.object({
  model_id: id,
  languages: langList,
  rule: z.enum(['any_to_any', 'any_to_en', 'en_to_any', 'specific_pairs']),
  blocked_pairs: pairList.nullish(),
  supported_pairs: pairList.nullish(),
});

export const languageCapabilitiesSchema = z
  .object({
    asr_languages: langList.nullish(),
    tts_languages: langList.nullish(),
    semantic_languages: langList.nullish(),
    nmt_capabilities: list(nmtCapabilitySchema, CAPABILITY_LIMITS.nmtEntries).nullish(),
    supported_language_pairs: pairList.nullish(),
  })
  .superRefine((caps, ctx) => {
    if (derivedPairsExceed(caps, CAPABILITY_LIMITS.derivedPairs))
      ctx.addIssue({
        code: 'custom',
        // without NMT rules, the pairs are asr_languages × semantic_languages
        path: [(caps.nmt_capabilities ?? []).length > 0 ? 'nmt_capabilities' : 'semantic_languages'],
        message: `derives more than ${CAPABILITY_LIMITS.derivedPairs} directed NMT pairs (the limit per node)`,
      });
  });

export const featuresSchema = z.object(
  Object.fromEntries(FEATURE_FLAGS.map((f) => [f, z.boolean().nullish()])) as Record<
    (typeof FEATURE_FLAGS)[number],
    z.ZodOptional<z.ZodNullable<z.ZodBoolean>>
  >,
);

export const nodeRegisterSchema = z.object({
  node_id: nodeIdSchema.nullish(),
  version: text,
  capability_schema_version: z.string().max(16).nullish(),
  /** windows | linux | macos, or what the node says (the lingua test node says "test") */
  platform: z.string().min(1).max(64),
  hardware: hardwareSchema,
  installed_models: list(installedModelSchema),
  installed_services: list(installedServiceSchema).nullish(),
  capability_by_type: list(capabilityByTypeSchema, 64),
  features_supported: featuresSchema,
  accept_public_jobs: z.boolean(),
  language_capabilities: languageCapabilitiesSchema.nullish(),
  max_concurrent_jobs: z.number().int().min(1).max(10000).nullish(),
  /**
   * The node sends job_ack for every job_assign (PROTOCOL.md "Acceptance"). Absent or false:
   * delivery on the socket counts as acceptance (the lingua client never acks).
   */
  acks_jobs: z.boolean().nullish(),
});
export type NodeRegister = z.infer<typeof nodeRegisterSchema>;

export const resourceUsageSchema = z.object({
  cpu_percent: percent,
  gpu_percent: percent.nullish(),
  gpu_mem_percent: percent.nullish(),
  mem_percent: percent,
  running_jobs: z.number().int().min(0).max(100000),
});

export const nodeHeartbeatSchema = z.object({
  node_id: nodeIdSchema,
  timestamp: z.number().int().min(0),
  resource_usage: resourceUsageSchema,
  installed_services: list(installedServiceSchema),
  capability_by_type: list(capabilityByTypeSchema, 64),
  installed_models: list(installedModelSchema).nullish(),
  language_capabilities: languageCapabilitiesSchema.nullish(),
  processing_metrics: z.record(z.string(), z.unknown()).nullish(),
  rerun_metrics: z.unknown().optional(),
  asr_metrics: z.unknown().optional(),
});
export type NodeHeartbeat = z.infer<typeof nodeHeartbeatSchema>;

/** A heartbeat without its capability parts: enough when those are byte-identical to the last ones. */
export const nodeHeartbeatCoreSchema = nodeHeartbeatSchema.pick({
  node_id: true,
  timestamp: true,
  resource_usage: true,
  processing_metrics: true,
  rerun_metrics: true,
  asr_metrics: true,
});
export type NodeHeartbeatCore = z.infer<typeof nodeHeartbeatCoreSchema>;

export const jobProgressSchema = z.object({
  job_id: id,
  attempt_id: z.number().int().min(1),
  node_id: nodeIdSchema,
  session_id: text.nullish(),
  trace_id: text.nullish(),
  /** job_assign's `traceparent`, echoed: the gateway's job.ack/job.result spans become its children. */
  traceparent: text.nullish(),
});

export const jobResultSchema = jobProgressSchema
  .extend({
    success: z.boolean(),
    error: z.object({ code: text, message: text, details: z.unknown().optional() }).nullish(),
  })
  .loose();

export const nodeErrorSchema = z.object({
  node_id: nodeIdSchema,
  code: z.string().min(1).max(128),
  message: text,
  details: z.unknown().optional(),
});

/** Streaming ASR text of a running job (the lingua client's `asr_partial`; no attempt id). */
export const asrPartialSchema = z.object({
  node_id: nodeIdSchema,
  job_id: id,
  session_id: text.nullish(),
  utterance_index: z.number().int().min(0).nullish(),
  text: z.string().max(65536),
  is_final: z.boolean().nullish(),
  trace_id: text.nullish(),
});
export type AsrPartial = z.infer<typeof asrPartialSchema>;

/** WebSocket frames the gateway accepts, by `type`. */
export const NODE_FRAME_TYPES = [
  'node_register',
  'node_heartbeat',
  'job_ack',
  'job_started',
  'job_result',
  'node_error',
  'asr_partial',
] as const;
export type NodeFrameType = (typeof NODE_FRAME_TYPES)[number];
