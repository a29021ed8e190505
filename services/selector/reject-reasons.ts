/**
 * Why a node is not eligible for a job (ARCHITECTURE.md "Selection"), in filter order: a node
 * is counted once, under its FIRST failing reason. Reasons 1–4 are about languages (see
 * language-stage.ts), 5–15 about the node itself (see node-filters.ts).
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
  'quarantined',
  'gpu_unavailable',
  'not_accepting_public',
  'model_not_available',
  'feature_unsupported',
  'excluded',
  'capacity_exceeded',
  'resource_threshold_exceeded',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/** When a node is rejected for each reason (docs/JOB-API.md is generated from this). */
export const REJECT_REASON_TEXT: Readonly<Record<RejectReason, string>> = {
  asr_lang_unsupported: 'The job uses ASR and the node has no ASR for `src_lang`.',
  src_auto_no_candidate:
    'Instead of the above for `src_lang: "auto"`: the node has no ASR language (none of `auto_langs`, when given).',
  lang_pair_unsupported:
    'The job uses NMT and the node does not translate `src_lang` → `tgt_lang` (for `auto`: none of its candidate sources into `tgt_lang`); also when source = target.',
  tts_lang_unsupported: 'The job uses TTS and the node has no TTS for `tgt_lang`.',
  semantic_lang_unsupported:
    'The job uses semantic repair and the source language is not among its semantic languages.',
  offline: 'The node is offline in the snapshot (its socket closed, or silent for `SB_NODE_TTL_MS`).',
  status_not_ready: 'The node is `registering` (no healthy heartbeat yet) or `degraded`.',
  draining: 'An operator drained the node.',
  quarantined:
    'The node failed or let time out `SB_QUARANTINE_FAULTS` jobs it had accepted within `SB_QUARANTINE_WINDOW_MS`: skipped until its back-off ends (`GET /v1/nodes/:id` says until when and why).',
  gpu_unavailable: 'The job requires a GPU and the node has none.',
  not_accepting_public: 'A public job, and the node registered with `accept_public_jobs: false`.',
  model_not_available:
    'A service type the job needs (its pipeline, and its features) is not reported ready in `capability_by_type`.',
  feature_unsupported: "A requested feature is not in the node's `features_supported`.",
  excluded: 'In `exclude_node_ids`, or tried by an earlier attempt of the job (failover).',
  capacity_exceeded:
    "Running (the larger of the node's report and its acked jobs) + reserved ≥ `max_concurrent_jobs`, with this selector's own latest reservations counted.",
  resource_threshold_exceeded:
    'cpu_percent, gpu_percent (when reported) or mem_percent ≥ `SB_RESOURCE_THRESHOLD`.',
};

// Positions in REJECT_REASONS, as the selection code counts them.
export const ASR_LANG = 0;
export const SRC_AUTO = 1;
export const LANG_PAIR = 2;
export const TTS_LANG = 3;
export const SEMANTIC_LANG = 4;
export const OFFLINE = 5;
export const NOT_READY = 6;
export const DRAINING = 7;
export const QUARANTINED = 8;
export const NO_GPU = 9;
export const NOT_PUBLIC = 10;
export const NO_MODEL = 11;
export const NO_FEATURE = 12;
export const EXCLUDED = 13;
export const CAPACITY = 14;
export const RESOURCES = 15;
