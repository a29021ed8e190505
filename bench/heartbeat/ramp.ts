/**
 * The max-throughput search of the heartbeat benchmark: stepped open-loop rates, each a fresh
 * run after the previous one drained (see measureStep for what "kept up" means).
 */
import { measureStep, type StepContext, type StepResult } from './step.ts';

export interface RampResult {
  steps: StepResult[];
  /** Highest applied rate of a step that kept up (null if none did). */
  maxSustained: number | null;
  /** Offered rate of that step. */
  maxSustainedOffered: number | null;
  /** Highest applied rate of a step that kept up with p99 within the latency goal. */
  maxWithinLatencyGoal: number | null;
  /** Highest applied rate seen in any step (may come from an overloaded one). */
  peakApplied: number;
  /** True when the search stopped before the gateway failed (load generator or --max-rate). */
  lowerBound: boolean;
  stoppedBecause: string;
}

export interface RampOptions {
  start: StepResult;
  maxRate: number;
  settleS: number;
  measureS: number;
  p99GoalMs: number;
  /** Called before each new step (progress output). */
  onStep: (rate: number) => void;
}

const MAX_STEPS = 12;
const BISECTIONS = 3;

/**
 * Next rate up from a step that kept up: toward where the gateway's CPU would reach ~95%,
 * at least ×1.15 and at most ×2 (the CPU estimate is only a guide; failures are bisected).
 */
function nextRateUp(step: StepResult): number {
  const cpu = step.cpu.processes['gateway'];
  const factor = cpu && cpu > 0 ? Math.min(2, Math.max(1.15, (0.95 * 100) / cpu)) : 1.3;
  return step.offeredRate * factor;
}

/**
 * Finds the highest rate the gateway keeps up with: from `start` (already measured) up until a
 * step fails (or down by ÷1.5 until one passes), then geometric bisections down to ~5%.
 * Each step is a fresh open-loop run after the previous one drained.
 */
export async function rampSearch(ctx: StepContext, opts: RampOptions): Promise<RampResult> {
  const steps = [opts.start];
  const run = async (rate: number): Promise<StepResult> => {
    opts.onStep(Math.round(rate));
    const step = await measureStep(ctx, Math.round(rate), opts.settleS, opts.measureS);
    steps.push(step);
    return step;
  };
  let best = opts.start.pass ? opts.start : null;
  let fail = opts.start.pass ? null : opts.start;
  let stoppedBecause = '';
  if (best) {
    while (!fail && steps.length < MAX_STEPS) {
      const rate = Math.min(nextRateUp(best), opts.maxRate);
      if (rate <= best.offeredRate) {
        stoppedBecause = `reached --max-rate ${opts.maxRate}`;
        break;
      }
      const step = await run(rate);
      if (step.pass) best = step;
      else fail = step;
    }
  } else {
    while (!best && steps.length < MAX_STEPS) {
      const step = await run(fail!.offeredRate / 1.5);
      if (step.pass) best = step;
      else fail = step;
    }
  }
  for (let i = 0; i < BISECTIONS && best && fail && fail.offeredRate / best.offeredRate > 1.05; i++) {
    const step = await run(Math.sqrt(best.offeredRate * fail.offeredRate));
    if (step.pass) best = step;
    else fail = step;
  }
  if (!stoppedBecause) {
    stoppedBecause = fail
      ? `lowest failing step: ${fail.offeredRate}/s (${fail.limitedBy}: ${fail.notes.join('; ')})`
      : `step limit (${MAX_STEPS})`;
  }
  const sustained = steps.filter((s) => s.pass);
  const withinGoal = sustained.filter(
    (s) => !s.latencyMs.overflow && s.latencyMs.p99 !== null && s.latencyMs.p99 <= opts.p99GoalMs,
  );
  const maxApplied = (list: StepResult[]) =>
    list.length ? Math.max(...list.map((s) => s.appliedRate)) : null;
  return {
    steps,
    maxSustained: best?.appliedRate ?? null,
    maxSustainedOffered: best?.offeredRate ?? null,
    maxWithinLatencyGoal: maxApplied(withinGoal),
    peakApplied: maxApplied(steps) ?? 0,
    lowerBound: fail === null || fail.limitedBy === 'load generator',
    stoppedBecause,
  };
}
