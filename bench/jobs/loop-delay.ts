/** Event-loop delay of a benchmark child, sampled like prom-client does in the services. */
import { monitorEventLoopDelay } from 'node:perf_hooks';

/** The sampling timer's interval: every reading includes it, so it is subtracted. */
const RESOLUTION_MS = 10;

export interface LoopDelay {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Starts sampling; the function returned gives the delay since its previous call (then resets). */
export function monitorLoopDelay(): () => LoopDelay {
  const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  h.enable();
  const late = (ns: number) => Math.max(0, ns / 1e6 - RESOLUTION_MS);
  return () => {
    const out = { p50Ms: late(h.percentile(50)), p99Ms: late(h.percentile(99)), maxMs: late(h.max) };
    h.reset();
    return out;
  };
}
