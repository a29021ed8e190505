/**
 * The jobs scenario's request mix, cycled request by request (a module of its own: the
 * orchestrator reports it too). Default pipeline (ASR + NMT + TTS). Each kind is served by a
 * share of the fleet simulator's default profile mix (zh-en 3, en-ja-zh 2, en-es-fr-de 2,
 * any-to-en 1): the share is given per kind.
 */
export const JOB_MIX: { name: string; src: string; tgt: string; servedBy: string }[] = [
  { name: 'zh→en', src: 'zh', tgt: 'en', servedBy: '6/8 (zh-en, en-ja-zh, any-to-en)' },
  { name: 'en→zh', src: 'en', tgt: 'zh', servedBy: '5/8 (zh-en, en-ja-zh)' },
  { name: 'ja→en', src: 'ja', tgt: 'en', servedBy: '3/8 (en-ja-zh, any-to-en)' },
  { name: 'fr→en', src: 'fr', tgt: 'en', servedBy: '3/8 (en-es-fr-de, any-to-en)' },
  { name: 'en→es', src: 'en', tgt: 'es', servedBy: '2/8 (en-es-fr-de)' },
];
