/**
 * Summary of a V8 `.cpuprofile` (as written by `node --cpu-prof`): where the time went, by
 * function (self and inclusive) and by area (a package in node_modules, a repo directory,
 * Node internals, GC).
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  ms: number;
  pct: number;
}

export interface ProfileSummary {
  file: string;
  /** Sampled time, excluding (idle). */
  busyMs: number;
  idleMs: number;
  topSelf: ProfileEntry[];
  topInclusive: ProfileEntry[];
  byArea: ProfileEntry[];
}

function frameName(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '~/');
  const short = file.replace(/^.*\/(services|shared|bench|scripts)\//, '$1/');
  return `${functionName || '(anonymous)'} ${short ? `${short}:${lineNumber + 1}` : ''}`.trim();
}

function areaOf(node: ProfileNode): string {
  const { functionName, url } = node.callFrame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return 'node internals';
  const dir = /\/(services\/[^/]+|shared|bench|scripts)\//.exec(url);
  return dir ? dir[1]! : url;
}

function top(map: Map<string, number>, total: number, n: number): ProfileEntry[] {
  return [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => ({ name, ms: Math.round(us / 1000), pct: Math.round((us / total) * 1000) / 10 }));
}

export function summarizeCpuProfile(file: string, n = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const areas = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    const node = byId.get(id);
    if (!node) return;
    if (node.callFrame.functionName === '(idle)') {
      idle += dt;
      return;
    }
    busy += dt;
    const name = frameName(node);
    self.set(name, (self.get(name) ?? 0) + dt);
    areas.set(areaOf(node), (areas.get(areaOf(node)) ?? 0) + dt);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur)!;
      if (frame.callFrame.functionName === '(root)') break;
      const key = frameName(frame);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + dt);
    }
  });
  return {
    file,
    busyMs: Math.round(busy / 1000),
    idleMs: Math.round(idle / 1000),
    topSelf: top(self, busy, n),
    topInclusive: top(inclusive, busy, n),
    byArea: top(areas, busy, n),
  };
}

/** Prints where a service's main thread spent its time (by area, then the top self entries). */
export function printProfile(label: string, p: ProfileSummary): void {
  console.log(`\n${label} CPU profile (${p.busyMs} ms busy, ${p.idleMs} ms idle): ${p.file}`);
  console.log(
    '  by area:  ' +
      p.byArea
        .slice(0, 8)
        .map((e) => `${e.name} ${e.pct}%`)
        .join(', '),
  );
  console.log('  top self:');
  for (const e of p.topSelf.slice(0, 10)) console.log(`    ${String(e.pct).padStart(5)}%  ${e.name}`);
}
