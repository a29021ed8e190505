/** Scraping and reading the Prometheus text format (only what the benchmarks need). */
import type { HistogramData } from './stats.ts';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Scrape {
  /** performance.now() halfway through the request. */
  at: number;
  samples: Sample[];
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
    const raw = m[3]!;
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    samples.push({ name: m[1]!, labels, value });
  }
  return samples;
}

export async function scrape(url: string, timeoutMs = 5000): Promise<Scrape> {
  const start = performance.now();
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  const text = await res.text();
  return { at: (start + performance.now()) / 2, samples: parsePrometheusText(text) };
}

function matches(labels: Record<string, string>, want: Record<string, string>): boolean {
  return Object.entries(want).every(([k, v]) => labels[k] === v);
}

/** Sum of every sample of `name` whose labels include `want`. */
export function sumOf(s: Scrape, name: string, want: Record<string, string> = {}): number {
  let total = 0;
  for (const x of s.samples) if (x.name === name && matches(x.labels, want)) total += x.value;
  return total;
}

/** Per value of `label`: the sum of samples of `name` carrying it. */
export function byLabel(s: Scrape, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of s.samples) {
    const key = x.labels[label];
    if (x.name === name && key !== undefined) out[key] = (out[key] ?? 0) + x.value;
  }
  return out;
}

/** `b − a` per key (keys of either side). */
export function diffRecords(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const d = (b[key] ?? 0) - (a[key] ?? 0);
    if (d !== 0) out[key] = d;
  }
  return out;
}

/** A histogram metric (`<name>_bucket`, `_sum`, `_count`) summed over series matching `want`. */
export function histogramOf(s: Scrape, name: string, want: Record<string, string> = {}): HistogramData {
  const buckets = new Map<number, number>();
  for (const x of s.samples) {
    if (x.name !== `${name}_bucket` || !matches(x.labels, want)) continue;
    const le = x.labels['le'] === '+Inf' ? Infinity : Number(x.labels['le']);
    buckets.set(le, (buckets.get(le) ?? 0) + x.value);
  }
  return {
    buckets: [...buckets].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le),
    sum: sumOf(s, `${name}_sum`, want),
    count: sumOf(s, `${name}_count`, want),
  };
}
