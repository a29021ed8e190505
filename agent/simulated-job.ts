import type { JobHandler } from './job-runner.ts';
import type { JobOutcome } from './protocol.ts';
import { lognormal } from './random.ts';
import { systemTimers, type Timers } from './timers.ts';

export interface SimulatedJobOptions {
  /** Mean job duration, ms (default 2000). */
  meanMs?: number;
  /** Lognormal shape of the duration (default 0.5; 0 = always `meanMs`). */
  sigma?: number;
  /** Share of jobs that fail with `SIMULATED_FAILURE` (default 0). */
  failureRate?: number;
  timers?: Timers;
  random?: () => number;
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal: AbortSignal, timers: Timers = systemTimers): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = () => {
      timer.cancel();
      reject(signal.reason as Error);
    };
    const timer = timers.after(ms, () => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A stand-in for the node's real pipeline: reports started at once, "works" for a lognormal
 * duration around the mean, then returns placeholder texts (or fails, at `failureRate`).
 * Honours cancellation.
 */
export function simulatedHandler(opts: SimulatedJobOptions = {}): JobHandler {
  const random = opts.random ?? Math.random;
  const timers = opts.timers ?? systemTimers;
  const mean = opts.meanMs ?? 2000;
  const sigma = opts.sigma ?? 0.5;
  return async (job, { signal, started }) => {
    started();
    const durationMs = Math.max(1, Math.round(lognormal(random, mean, sigma)));
    await sleep(durationMs, signal, timers);
    if (random() < (opts.failureRate ?? 0)) {
      throw Object.assign(new Error(`simulated failure after ${durationMs} ms`), {
        code: 'SIMULATED_FAILURE',
      });
    }
    const src = job.src_lang ?? '?';
    const tgt = job.tgt_lang ?? '?';
    const pipeline = job.pipeline ?? {};
    const outcome: JobOutcome = {
      success: true,
      processing_time_ms: durationMs,
      extra: { simulated: true },
    };
    if (pipeline['use_asr'] !== false)
      outcome.text_asr = `[simulated ${src} transcript #${job.utterance_index ?? 0}]`;
    if (pipeline['use_nmt'] !== false) outcome.text_translated = `[simulated ${src}→${tgt} translation]`;
    if (pipeline['use_tts'] === true) {
      outcome.tts_audio = '';
      outcome.tts_format = 'pcm16';
    }
    return outcome;
  };
}
