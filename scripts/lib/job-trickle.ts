/**
 * A steady trickle of jobs for `npm start`, so a newcomer sees jobs flow: POSTs to the
 * selectors in turn, waits for each job's outcome with a long poll, and keeps counts.
 */
export interface TrickleStats {
  submitted: number;
  placed: number;
  noNode: number;
  finished: number;
  failed: number;
  errors: number;
}

const PAIRS: [string, string][] = [
  ['zh', 'en'],
  ['en', 'zh'],
  ['ja', 'en'],
  ['en', 'ja'],
  ['fr', 'en'],
  ['auto', 'en'],
];

export function startJobTrickle(
  selectorUrls: string[],
  apiKey: string,
  perSecond: number,
): { stats: TrickleStats; stop(): void } {
  const stats: TrickleStats = { submitted: 0, placed: 0, noNode: 0, finished: 0, failed: 0, errors: 0 };
  const headers = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' };
  let n = 0;
  const submit = async () => {
    const i = n++;
    const [src, tgt] = PAIRS[i % PAIRS.length]!;
    const base = selectorUrls[i % selectorUrls.length]!;
    stats.submitted++;
    try {
      const res = await fetch(`${base}/v1/jobs`, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          src_lang: src,
          tgt_lang: tgt,
          routing_key: `demo-session-${i % 20}`,
          payload: { session_id: `demo-${i % 20}`, utterance_index: i },
        }),
      });
      const body = (await res.json()) as { job_id?: string };
      if (res.status === 503) return void stats.noNode++;
      if (res.status !== 201 || !body.job_id) return void stats.errors++;
      stats.placed++;
      const done = (await (
        await fetch(`${base}/v1/jobs/${body.job_id}?wait_ms=30000`, { headers })
      ).json()) as { status?: string };
      if (done.status === 'finished') stats.finished++;
      else if (done.status === 'failed') stats.failed++;
    } catch {
      stats.errors++;
    }
  };
  const timer = setInterval(() => void submit(), Math.max(10, 1000 / perSecond));
  return { stats, stop: () => clearInterval(timer) };
}
