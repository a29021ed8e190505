/**
 * Why a node is not eligible for a job (ARCHITECTURE.md "Selection"), in filter order: a node
 * is counted once, under its FIRST failing reason. Reasons 1–4 are about languages (see
 * language-stage.ts), 5–14 about the node itself (see node-filters.ts).
 */
export const REJECT_REASONS = [
  'asr_lang_unsupported',
  'src_auto_no_candidate',
  'lang_pair_unsupported',
  'tts_lang_unsupported',
  'semantic_lang_unsupported',
  'offline',
  'status_not_ready',
  'draining',
  'gpu_unavailable',
  'not_accepting_public',
  'model_not_available',
  'feature_unsupported',
  'excluded',
  'capacity_exceeded',
  'resource_threshold_exceeded',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

// Positions in REJECT_REASONS, as the selection code counts them.
export const ASR_LANG = 0;
export const SRC_AUTO = 1;
export const LANG_PAIR = 2;
export const TTS_LANG = 3;
export const SEMANTIC_LANG = 4;
export const OFFLINE = 5;
export const NOT_READY = 6;
export const DRAINING = 7;
export const NO_GPU = 8;
export const NOT_PUBLIC = 9;
export const NO_MODEL = 10;
export const NO_FEATURE = 11;
export const EXCLUDED = 12;
export const CAPACITY = 13;
export const RESOURCES = 14;
