import { AUTO_LANG, normalizeLang } from '../../shared/language-pairs.ts';
import { JOB_DEFAULTS, type JobRequest } from '../../shared/protocol/client-messages.ts';
import { pipelineFlags } from '../../shared/protocol/outbound-frames.ts';
import { validateFeatures, type SelectionRequest } from './selection.ts';

/** The five pipeline flags selection knows by name (with their language checks). */
const NAMED = new Set(['use_asr', 'use_nmt', 'use_tts', 'use_semantic', 'use_tone']);

/**
 * A validated `POST /v1/jobs` body as a selection request. `preferredNodeId` falls back to the
 * session's node (session affinity) and `routingKey` to the session id.
 */
export function toSelection(req: JobRequest, sessionNode: string | null = null): SelectionRequest {
  const features = Object.entries(req.features ?? {})
    .filter(([, on]) => on)
    .map(([name]) => name);
  validateFeatures(features);
  const src = normalizeLang(req.src_lang);
  const flags = pipelineFlags(req.pipeline);
  const d = JOB_DEFAULTS.pipeline;
  const sessionId = req.payload?.['session_id'];
  return {
    srcLang: src === AUTO_LANG ? AUTO_LANG : src,
    tgtLang: normalizeLang(req.tgt_lang),
    pipeline: {
      asr: flags['use_asr'] ?? d.use_asr,
      nmt: flags['use_nmt'] ?? d.use_nmt,
      tts: flags['use_tts'] ?? d.use_tts,
      semantic: flags['use_semantic'] ?? d.use_semantic,
      tone: flags['use_tone'] ?? d.use_tone,
    },
    extraTypes: Object.entries(flags)
      .filter(([name, on]) => on && !NAMED.has(name))
      .map(([name]) => name.slice('use_'.length)),
    features,
    routingKey: req.routing_key ?? (typeof sessionId === 'string' && sessionId !== '' ? sessionId : null),
    public: req.public ?? JOB_DEFAULTS.public,
    requireGpu: req.require_gpu ?? JOB_DEFAULTS.require_gpu,
    autoLangs: req.auto_langs?.map(normalizeLang) ?? null,
    preferredNodeId: req.preferred_node_id ?? sessionNode,
    excludeNodeIds: req.exclude_node_ids ?? [],
  };
}
