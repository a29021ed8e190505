/** Seeded randomness for simulations (reproducible with the same seed). */

/** mulberry32: a small, fast 32-bit PRNG; uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal (Box–Muller). */
export function normal(random: () => number): number {
  const u = 1 - random(); // (0, 1]: log(0) never happens
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Lognormal with the given mean and shape `sigma` (0 = always the mean). */
export function lognormal(random: () => number, mean: number, sigma: number): number {
  if (sigma <= 0) return mean;
  const mu = Math.log(mean) - (sigma * sigma) / 2;
  return Math.exp(mu + sigma * normal(random));
}

/** One item of `items`, with probability proportional to its weight. */
export function weightedPick<T>(random: () => number, items: readonly { item: T; weight: number }[]): T {
  const total = items.reduce((n, x) => n + Math.max(0, x.weight), 0);
  let r = random() * total;
  for (const x of items) {
    r -= Math.max(0, x.weight);
    if (r < 0) return x.item;
  }
  const last = items[items.length - 1];
  if (!last) throw new Error('weightedPick: no items');
  return last.item;
}
