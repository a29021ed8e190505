/** The job client's request mix (a module of its own: the orchestrator reports it too). */

/** The mix, cycled request by request. Every node of the benchmark fleet serves every kind. */
export const JOB_KINDS: { name: string; body: (i: number) => Record<string, unknown> }[] = [
  { name: 'zh→en', body: () => ({ src_lang: 'zh', tgt_lang: 'en' }) },
  {
    name: 'en→zh, routing key',
    body: (i) => ({ src_lang: 'en', tgt_lang: 'zh', routing_key: `s-${i % 500}` }),
  },
  { name: 'ja→en', body: () => ({ src_lang: 'ja', tgt_lang: 'en' }) },
  { name: 'auto→en', body: () => ({ src_lang: 'auto', tgt_lang: 'en' }) },
  {
    name: 'zh→en + emotion, routing key',
    body: (i) => ({
      src_lang: 'zh',
      tgt_lang: 'en',
      routing_key: `s-${i % 500}`,
      features: { emotion_detection: true },
    }),
  },
];
