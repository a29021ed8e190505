import { hasBit } from './bitset.ts';
import type { Eligible } from './eligible-nodes.ts';
import type { LoadOrder } from './load-order.ts';

/**
 * The k least loaded eligible nodes (ranking.ts): lowest (load, GPU%) first, ties in visit
 * order; `skip` (a slot, or −1) left out. Load is the index's per-slot `load`, or this
 * selector's known load where it overrides it (eligible-nodes.ts); GPU% the index's `gpu0`.
 *
 * When the eligible nodes are in slot order (el.bits, eligible-nodes.ts) and many, the answer
 * is found by walking the index's LoadOrder (load-order.ts) from the front: the first k
 * eligible nodes met there that no known load overrides, the eligible ones of the tail
 * (upserted since the order was merged) and the overridden ones compete — O(k × nodes ÷
 * eligible) steps rather than O(eligible). A walk longer than WALK_LIMIT steps (the least
 * loaded nodes are mostly not eligible) gives up for the scan, which gives the same answer.
 */

/** Eligible nodes below which the scan is cheaper than a walk. */
const WALK_MIN = 256;
/** Steps after which a walk gives up for the scan. */
const WALK_LIMIT = 4096;

/** The k best by (load, gpu, slot) offered so far, best first. */
class TopK {
  readonly slots: number[] = [];
  private readonly loads: number[] = [];
  private readonly gpus: number[] = [];
  worstLoad = Infinity;

  constructor(private readonly k: number) {}

  offer(s: number, l: number, g: number): void {
    const { slots, loads, gpus, k } = this;
    const n = slots.length;
    if (n === k && !before(l, g, s, loads[k - 1]!, gpus[k - 1]!, slots[k - 1]!)) return;
    let pos = n < k ? n : k - 1;
    while (pos > 0 && before(l, g, s, loads[pos - 1]!, gpus[pos - 1]!, slots[pos - 1]!)) {
      slots[pos] = slots[pos - 1]!;
      loads[pos] = loads[pos - 1]!;
      gpus[pos] = gpus[pos - 1]!;
      pos--;
    }
    slots[pos] = s;
    loads[pos] = l;
    gpus[pos] = g;
    if (slots.length === k) this.worstLoad = loads[k - 1]!;
  }
}

function before(l: number, g: number, s: number, l2: number, g2: number, s2: number): boolean {
  return l < l2 || (l === l2 && (g < g2 || (g === g2 && s < s2)));
}

/** Slots of the k least loaded eligible nodes, best first (see the file comment). */
export function leastLoaded(
  el: Eligible,
  order: LoadOrder,
  load: Float64Array,
  gpu: Float64Array,
  k: number,
  skip: number,
): number[] {
  if (el.bits === null) return leastLoadedListed(el, load, gpu, k, skip);
  if (el.n >= WALK_MIN) {
    const top = walk(el, order, load, gpu, k, skip);
    if (top !== null) return top;
  }
  return scan(el, load, gpu, k, skip, 0);
}

/** The walk; null when it gave up. */
function walk(
  el: Eligible,
  order: LoadOrder,
  load: Float64Array,
  gpu: Float64Array,
  k: number,
  skip: number,
): number[] | null {
  const rem = el.bits!;
  const overrides = el.overrides;
  const overridden = el.overridden;
  const sorted = order.sorted;
  const top = new TopK(k);
  let found = 0;
  const end = Math.min(order.n, WALK_LIMIT);
  let i = 0;
  for (; i < end && found < k; i++) {
    const s = sorted[i]!;
    if ((rem[s >>> 5]! & (1 << (s & 31))) === 0 || s === skip) continue;
    if (overrides !== null && hasBit(overridden, s)) continue;
    top.offer(s, load[s]!, gpu[s]!);
    found++;
  }
  if (found < k && i < order.n) return null;
  // the tail, then the overridden ones
  const tail = scan(el, load, gpu, k, skip, order.tailFrom);
  for (const s of tail) top.offer(s, loadOf(el, load, s), gpu[s]!);
  if (overrides !== null) {
    for (const [s, l] of overrides)
      if (s < order.tailFrom && hasBit(rem, s) && s !== skip) top.offer(s, l, gpu[s]!);
  }
  return top.slots;
}

function loadOf(el: Eligible, load: Float64Array, s: number): number {
  return el.overrides !== null && hasBit(el.overridden, s) ? el.overrides.get(s)! : load[s]!;
}

/** The k least loaded eligible slots from slot `from` on, over the bits (slot order). */
function scan(
  el: Eligible,
  load: Float64Array,
  gpu: Float64Array,
  k: number,
  skip: number,
  from: number,
): number[] {
  const rem = el.bits!;
  const overrides = el.overrides;
  const overridden = el.overridden;
  const top = new TopK(k);
  for (let w = from >>> 5; w < el.words; w++) {
    let b = rem[w]!;
    if (w === from >>> 5) b &= ~((1 << (from & 31)) - 1);
    for (; b !== 0; b &= b - 1) {
      const s = (w << 5) | (31 - Math.clz32(b & -b));
      const l = overrides !== null && hasBit(overridden, s) ? overrides.get(s)! : load[s]!;
      if (l > top.worstLoad || s === skip) continue;
      top.offer(s, l, gpu[s]!);
    }
  }
  return top.slots;
}

/**
 * The listed eligible nodes (visit order not slot order): one pass, the comparison inline (a
 * comparator callback per node cost more than the rest of a selection together at 10,000+
 * eligible nodes); a node's GPU% is read only when it might enter. Ties keep list order.
 */
function leastLoadedListed(
  el: Eligible,
  load: Float64Array,
  gpu: Float64Array,
  k: number,
  skip: number,
): number[] {
  const { n, slots } = el;
  const top: number[] = [];
  const topLoad: number[] = [];
  const topGpu: number[] = [];
  const overrides = el.overrides;
  // the k-th best so far: a node must beat it to enter
  let worstLoad = Infinity;
  let worstGpu = Infinity;
  for (let i = 0; i < n; i++) {
    const s = slots[i]!;
    const l = overrides !== null && hasBit(el.overridden, s) ? overrides.get(s)! : load[s]!;
    if (l > worstLoad) continue;
    const g = gpu[s]!;
    if (top.length === k && !(l < worstLoad || (l === worstLoad && g < worstGpu))) continue;
    if (s === skip) continue;
    let pos = top.length < k ? top.length : k - 1;
    while (pos > 0) {
      const pl = topLoad[pos - 1]!;
      if (!(l < pl || (l === pl && g < topGpu[pos - 1]!))) break;
      top[pos] = top[pos - 1]!;
      topLoad[pos] = pl;
      topGpu[pos] = topGpu[pos - 1]!;
      pos--;
    }
    top[pos] = s;
    topLoad[pos] = l;
    topGpu[pos] = g;
    if (top.length === k) {
      worstLoad = topLoad[k - 1]!;
      worstGpu = topGpu[k - 1]!;
    }
  }
  return top;
}
