/**
 * `npm start` submits jobs only once the simulated fleet is ready: every selector's snapshot shows
 * the expected number of nodes `ready` (its `sb_nodes{status="ready"}` gauge), so the first jobs
 * are not refused for want of nodes that are still registering.
 */
export interface FleetWait {
  /** Ready nodes each selector sees, the fewest of them (0 while one does not answer). */
  ready: number;
  expected: number;
  /** Whether the deadline passed first. */
  timedOut: boolean;
}

/** The ready nodes a selector's /metrics shows, or 0 when it does not answer. */
export async function readyNodes(selectorUrl: string): Promise<number> {
  try {
    const res = await fetch(`${selectorUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
    const line = (await res.text()).split('\n').find((l) => /^sb_nodes\{[^}]*status="ready"/.test(l));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) || 0 : 0;
  } catch {
    return 0;
  }
}

/**
 * Resolves once every selector sees at least `expected` ready nodes, or after `timeoutMs` (then
 * `timedOut`), or when `cancelled()` turns true; `progress` hears each poll's figure.
 */
export async function waitForReadyFleet(
  selectorUrls: string[],
  expected: number,
  options: {
    timeoutMs: number;
    pollMs?: number;
    cancelled?: () => boolean;
    progress?: (ready: number) => void;
  },
): Promise<FleetWait> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const ready = Math.min(...(await Promise.all(selectorUrls.map(readyNodes))));
    options.progress?.(ready);
    if (ready >= expected) return { ready, expected, timedOut: false };
    if (Date.now() >= deadline || options.cancelled?.()) return { ready, expected, timedOut: true };
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 500));
  }
}
