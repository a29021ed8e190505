/**
 * The eligible nodes of the current selection: module-level scratch arrays, reused across
 * calls (selection is synchronous), so that no per-node allocation is made. Entry n is the
 * n-th eligible node: its id, its load ((running + reserved) / max), its GPU% (unreported = 0)
 * and, when ranking by routing key, its rendezvous score. Written by node-filters.ts, read by
 * ranking.ts and selection.ts.
 */

export const scratchIds: string[] = [];
export let scratchLoad: Float64Array = new Float64Array(1024);
export let scratchGpu: Float64Array = new Float64Array(1024);
export let scratchScore: Float64Array = new Float64Array(1024);

/** Makes room for entry `n` (keeps the loads and GPU% written so far). */
export function growScratch(n: number): void {
  const size = Math.max(n + 1, scratchLoad.length * 2);
  const grow = (old: Float64Array): Float64Array => {
    const next = new Float64Array(size);
    next.set(old);
    return next;
  };
  scratchLoad = grow(scratchLoad);
  scratchGpu = grow(scratchGpu);
  scratchScore = new Float64Array(size);
}
