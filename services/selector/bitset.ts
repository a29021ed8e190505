/**
 * Bit sets over the SnapshotIndex's node slots (snapshot-index.ts): Uint32Array words, bit s
 * of word s >>> 5 = slot s. Operations take `nw`, the number of words in use, and never
 * allocate. Slot order is the order the nodes were last upserted in, which is also the
 * iteration order of the index's Sets and Map: selection visits nodes in it.
 */

export type Bits = Uint32Array;

export function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

export function countBits(a: Bits, nw: number): number {
  let n = 0;
  for (let w = 0; w < nw; w++) {
    const x = a[w]!;
    if (x !== 0) n += popcount32(x);
  }
  return n;
}

export function hasBit(a: Bits, slot: number): boolean {
  return (a[slot >>> 5]! & (1 << (slot & 31))) !== 0;
}

export function setBit(a: Bits, slot: number): void {
  a[slot >>> 5]! |= 1 << (slot & 31);
}

export function clearBit(a: Bits, slot: number): void {
  a[slot >>> 5]! &= ~(1 << (slot & 31));
}

export function copyBits(out: Bits, a: Bits, nw: number): Bits {
  for (let w = 0; w < nw; w++) out[w] = a[w]!;
  return out;
}

export function clearBits(out: Bits, nw: number): Bits {
  out.fill(0, 0, nw);
  return out;
}

/** out = a ∧ b */
export function andBits(out: Bits, a: Bits, b: Bits, nw: number): Bits {
  for (let w = 0; w < nw; w++) out[w] = a[w]! & b[w]!;
  return out;
}

/** out = a ∧ b; returns |out|. */
export function andCountBits(out: Bits, a: Bits, b: Bits, nw: number): number {
  let n = 0;
  for (let w = 0; w < nw; w++) {
    const x = a[w]! & b[w]!;
    out[w] = x;
    if (x !== 0) n += popcount32(x);
  }
  return n;
}

/** out = a ∨ b */
export function orBits(out: Bits, a: Bits, b: Bits, nw: number): Bits {
  for (let w = 0; w < nw; w++) out[w] = a[w]! | b[w]!;
  return out;
}

/**
 * Splits `rem` by `fail`: out = rem ∧ fail (the nodes rejected here), rem = rem ∧ ¬fail (when
 * `negate`, fail is given as its complement: out = rem ∧ ¬pass, rem = rem ∧ pass). Returns |out|.
 */
export function splitBits(out: Bits, rem: Bits, mask: Bits, negate: boolean, nw: number): number {
  let n = 0;
  for (let w = 0; w < nw; w++) {
    const r = rem[w]!;
    if (r === 0) {
      out[w] = 0;
      continue;
    }
    const f = negate ? r & ~mask[w]! : r & mask[w]!;
    out[w] = f;
    if (f !== 0) {
      n += popcount32(f);
      rem[w] = r & ~f;
    }
  }
  return n;
}

/**
 * splitBits without `out`, for a visit in slot order: rem = rem ∧ ¬fail (fail = rem ∧ mask, or
 * rem ∧ ¬mask when `negate`); the first `want` slots of fail (in slot order) go to `first`.
 * Returns |fail|.
 */
export function splitBitsFirst(
  rem: Bits,
  mask: Bits,
  negate: boolean,
  nw: number,
  first: Int32Array,
  want: number,
): number {
  let n = 0;
  let got = 0;
  for (let w = 0; w < nw; w++) {
    const r = rem[w]!;
    if (r === 0) continue;
    const f = negate ? r & ~mask[w]! : r & mask[w]!;
    if (f === 0) continue;
    for (let b = f; got < want && b !== 0; b &= b - 1) first[got++] = (w << 5) | (31 - Math.clz32(b & -b));
    n += popcount32(f);
    rem[w] = r & ~f;
  }
  return n;
}

/**
 * Calls `fn(slot)` for the members of `target`, in the order of the union `order`: the members
 * of order[0] by slot, then those of order[1] not in order[0], … (null: slot order), as long as
 * `fn` returns true. This is the order a deduplicated iteration of the index's Sets would take.
 */
export function forEachInOrder(
  order: readonly Bits[] | null,
  target: Bits,
  nw: number,
  fn: (slot: number) => boolean,
): void {
  const sets = order === null ? 0 : order.length;
  for (let i = 0; i < Math.max(1, sets); i++) {
    const own = sets === 0 ? null : order![i]!;
    for (let w = 0; w < nw; w++) {
      let b = target[w]!;
      if (own !== null) b &= own[w]!;
      for (let j = 0; j < i && b !== 0; j++) b &= ~order![j]![w]!;
      while (b !== 0) {
        const low = b & -b;
        if (!fn((w << 5) | (31 - Math.clz32(low)))) return;
        b ^= low;
      }
    }
  }
}
