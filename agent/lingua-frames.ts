/**
 * The frames of the lingua node client (TinoTau/lingua_1, `electron_node`), in exactly the
 * shapes it puts on the wire (test/fixtures/lingua/client-frames.json): what the agent's
 * `--lingua` mode sends. Not Switchboard's dialect: no `nmt_capabilities`, no `acks_jobs`,
 * service types the fleet ships (`phonetic`, `punctuation`), `devices` per type, nulls where
 * the client sends nulls.
 */

/** `core`: ASR, NMT, TTS, semantic. `full`: every service the repository ships but lexicon. */
export type LinguaBundle = 'core' | 'full';

export interface LinguaShape {
  bundle: LinguaBundle;
  /** asr_languages = semantic_languages (the client's pairs: asr × semantic) */
  languages: string[];
  tts: string[];
  gpu: { name: string; memory_gb: number } | null;
  cpuCores: number;
  memoryGb: number;
}

interface Service {
  service_id: string;
  type: string;
  device: string;
  status: 'running' | 'stopped';
  version: string;
}

const svc = (service_id: string, type: string, status: Service['status'] = 'running', version = '1.0.0') => ({
  service_id,
  type,
  status,
  version,
});

const BUNDLES: Record<LinguaBundle, Omit<Service, 'device'>[]> = {
  core: [
    svc('faster-whisper-vad', 'asr', 'running', '2.0.0'),
    svc('nmt-m2m100', 'nmt'),
    svc('piper-tts', 'tts'),
    svc('semantic-repair-en-zh', 'semantic'),
  ],
  full: [
    svc('asr-sherpa-en', 'asr', 'stopped'),
    svc('asr-sherpa-lm', 'asr', 'stopped'),
    svc('faster-whisper-vad', 'asr', 'running', '2.0.0'),
    svc('nmt-m2m100', 'nmt'),
    svc('node-inference', 'asr', 'stopped'),
    svc('phonetic-correction-zh', 'phonetic'),
    svc('piper-tts', 'tts'),
    svc('punctuation-restore', 'punctuation'),
    svc('semantic-repair-en-zh', 'semantic'),
    svc('speaker-embedding', 'tone', 'stopped'),
    svc('your-tts', 'tone'),
  ],
};

const MODELS = [
  { model_id: 'faster-whisper-large-v3', kind: 'asr' },
  { model_id: 'm2m100-418M', kind: 'nmt' },
].map((m) => ({ ...m, src_lang: null, tgt_lang: null, dialect: null, version: '1.0.0', enabled: true }));

const FEATURES = {
  emotion_detection: false,
  voice_style_detection: false,
  speech_rate_detection: false,
  speech_rate_control: false,
  speaker_identification: false,
  persona_adaptation: false,
};

/** installed_services, capability_by_type and language_capabilities: in both register and heartbeat. */
function capabilities(shape: LinguaShape) {
  const device = shape.gpu ? 'gpu' : 'cpu';
  const services = BUNDLES[shape.bundle].map((s) => ({ ...s, device }));
  const types: string[] = [];
  for (const s of services) if (s.status === 'running' && !types.includes(s.type)) types.push(s.type);
  return {
    installed_models: MODELS,
    installed_services: services,
    capability_by_type: types.map((type) => ({ type, ready: true, devices: [device] })),
    language_capabilities: {
      asr_languages: shape.languages,
      tts_languages: shape.tts,
      semantic_languages: shape.languages,
      semantic_core_ready: true,
    },
  };
}

/** node_register, with `node_id` null the first time and the old id after a reconnect. */
export function linguaRegister(shape: LinguaShape, nodeId: string | null): Record<string, unknown> {
  const caps = capabilities(shape);
  return {
    type: 'node_register',
    node_id: nodeId,
    version: '2.0.0',
    capability_schema_version: '2.0',
    platform: 'linux',
    hardware: {
      cpu_cores: shape.cpuCores,
      memory_gb: shape.memoryGb,
      gpus: shape.gpu ? [shape.gpu] : [],
    },
    installed_models: caps.installed_models,
    installed_services: caps.installed_services,
    capability_by_type: caps.capability_by_type,
    features_supported: FEATURES,
    accept_public_jobs: true,
    language_capabilities: caps.language_capabilities,
  };
}

export interface LinguaUsage {
  cpu: number;
  gpu: number | null;
  gpuMem: number | null;
  mem: number;
  runningJobs: number;
}

/** node_heartbeat; `efficiencies` (service id → value) once a job ran, as the client does. */
export function linguaHeartbeat(
  shape: LinguaShape,
  nodeId: string,
  usage: LinguaUsage,
  efficiencies: Record<string, number> | null,
): Record<string, unknown> {
  const frame: Record<string, unknown> = {
    type: 'node_heartbeat',
    node_id: nodeId,
    timestamp: Date.now(),
    resource_usage: {
      cpu_percent: usage.cpu,
      gpu_percent: usage.gpu,
      gpu_mem_percent: usage.gpuMem,
      mem_percent: usage.mem,
      running_jobs: usage.runningJobs,
    },
    ...capabilities(shape),
    rerun_metrics: {
      totalReruns: 0,
      successfulReruns: 0,
      failedReruns: 0,
      timeoutReruns: 0,
      qualityImprovements: 0,
    },
  };
  if (efficiencies) frame['processing_metrics'] = { serviceEfficiencies: efficiencies };
  return frame;
}

/** The ids asr_partial and job_result copy from job_assign. */
export interface LinguaJobIds {
  job_id: string;
  attempt_id: number;
  session_id: string;
  utterance_index: number;
  trace_id: string;
}

export function linguaPartial(nodeId: string, job: LinguaJobIds, text: string): Record<string, unknown> {
  return {
    type: 'asr_partial',
    node_id: nodeId,
    session_id: job.session_id,
    utterance_index: job.utterance_index,
    job_id: job.job_id,
    text,
    is_final: false,
    trace_id: job.trace_id,
  };
}

export function linguaResult(
  nodeId: string,
  job: LinguaJobIds,
  outcome: { textAsr: string; textTranslated: string; ms: number } | { error: string; ms: number },
): Record<string, unknown> {
  const head = {
    type: 'job_result',
    job_id: job.job_id,
    attempt_id: job.attempt_id,
    node_id: nodeId,
    session_id: job.session_id,
    utterance_index: job.utterance_index,
  };
  if ('error' in outcome) {
    return {
      ...head,
      success: false,
      processing_time_ms: outcome.ms,
      error: { code: 'PROCESSING_ERROR', message: outcome.error },
      trace_id: job.trace_id,
    };
  }
  return {
    ...head,
    success: true,
    text_asr: outcome.textAsr,
    text_translated: outcome.textTranslated,
    tts_audio: '',
    tts_format: 'opus',
    extra: { language_probability: 0.97 },
    processing_time_ms: outcome.ms,
    trace_id: job.trace_id,
    asr_quality_level: 'good',
    reason_codes: [],
    quality_score: 0.93,
    rerun_count: 0,
  };
}
