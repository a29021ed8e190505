/**
 * How long past a slot's own deadline the job sweep (services/worker/job-sweep.ts) waits before
 * it judges the slot lost: the node-side timeouts, run by the same liveness tick, release it
 * first (a few ticks, and a second for a slow one).
 */
export function sweepMarginMs(reaperIntervalMs: number): number {
  return 4 * reaperIntervalMs + 1000;
}

// The open-jobs index (`{sb:j<k>}:open`): unfinished job → when the job sweep looks at it. A job
// enters it in its claim (claimJob-4.lua, shared/store/job-shard.ts) due at its ack deadline plus
// the margin; failoverJob-3.lua re-arms it, and the sweep takes it out once the job is terminal or
// gone (a job whose placement was dropped included).
