/** Result printing: progress lines, warnings, compact tables, and the JSON result file. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results');

const warnings: string[] = [];

/** Prints a warning now and keeps it for the result file. */
export function warn(message: string): void {
  warnings.push(message);
  console.error(`warning: ${message}`);
}

/** Warnings so far (and forgets them: each scenario's result carries its own). */
export function takeWarnings(): string[] {
  return warnings.splice(0);
}

const started = performance.now();

/** A progress line, prefixed with seconds since start. */
export function progress(message: string): void {
  console.log(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)}s] ${message}`);
}

export type Cell = string | number | null | undefined;

/** Prints rows as a left-aligned first column and right-aligned others, under `header`. */
export function printTable(header: Cell[], rows: Cell[][]): void {
  const text = [header, ...rows].map((row) =>
    row.map((c) => (c === null || c === undefined ? '–' : String(c))),
  );
  const widths = header.map((_, i) => Math.max(...text.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  console.log(line(text[0]!));
  console.log(widths.map((w) => '─'.repeat(w)).join('  '));
  for (const r of text.slice(1)) console.log(line(r));
}

export const fmt = {
  int: (x: number | null | undefined): string =>
    x === null || x === undefined || !Number.isFinite(x) ? '–' : Math.round(x).toLocaleString('en-US'),
  ms: (x: number | null | undefined, digits = 2): string =>
    x === null || x === undefined || !Number.isFinite(x) ? '–' : `${x.toFixed(digits)} ms`,
  pct: (x: number | null | undefined): string =>
    x === null || x === undefined || !Number.isFinite(x) ? '–' : `${x.toFixed(1)}%`,
  ratio: (x: number | null | undefined): string =>
    x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(2),
};

/** Writes `bench/results/<name>-<timestamp>.json`; returns the path relative to the repo. */
export function writeResult(name: string, result: unknown): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const path = join(RESULTS_DIR, `${name}-${stamp}.json`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);
  return relative(REPO_ROOT, path);
}
