import type { BenchOptions } from './options.ts';
import type { Supervisor } from './processes.ts';

export interface ScenarioContext {
  options: BenchOptions;
  /** Owns every child process; the scenario registers its cleanups here. */
  supervisor: Supervisor;
}

export interface Goal {
  name: string;
  target: string;
  value: string;
  /** null: not evaluated (e.g. a figure is missing). */
  pass: boolean | null;
}

export interface ScenarioOutcome {
  resultFile: string;
  goals: Goal[];
}

/** A benchmark scenario, loaded only when selected. */
export interface ScenarioEntry {
  name: string;
  description: string;
  load: () => Promise<{ run: (ctx: ScenarioContext) => Promise<ScenarioOutcome> }>;
}
