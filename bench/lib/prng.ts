/**
 * A small seeded PRNG, so every benchmark run samples the same timelines and the same jitter:
 * numbers only move when the code under test moves.
 *
 * xoshiro128** (Blackman and Vigna) seeded through splitmix32 from a string label. Math.random
 * can't be seeded, and the quality needed here is modest; what matters is independent streams
 * per (seed, purpose) so that changing one policy's jitter never reshuffles the timelines.
 */

/**
 * A stream of pseudo-random numbers.
 * @internal
 */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [min, max). */
  uniform(min: number, max: number): number;
  /** Log-uniform in [min, max): as many values between 1 and 2 minutes as between 5 and 10. */
  logUniform(min: number, max: number): number;
  /** Uniform integer in [min, max] (both included). */
  int(min: number, max: number): number;
  /** One key of `weights`, chosen with probability proportional to its weight. */
  pick<K extends string>(weights: Readonly<Record<K, number>>): K;
}

/** 32-bit FNV-1a of a string: turns a readable label into seed material. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function splitmix32(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/**
 * A stream determined entirely by `seed` and `label` (e.g. `createRng(42, 'timelines/volume')`).
 * @internal
 */
export function createRng(seed: number, label: string): Rng {
  const init = splitmix32(fnv1a(`${seed}:${label}`));
  let a = init();
  let b = init();
  let c = init();
  let d = init();
  // An all-zero state would only ever produce zeros.
  if ((a | b | c | d) === 0) a = 1;
  const nextUint32 = (): number => {
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return result;
  };
  const next = (): number => nextUint32() / 2 ** 32;
  return {
    next,
    uniform: (min, max) => min + next() * (max - min),
    logUniform: (min, max) => Math.exp(Math.log(min) + next() * (Math.log(max) - Math.log(min))),
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick<K extends string>(weights: Readonly<Record<K, number>>): K {
      const entries = Object.entries(weights) as [K, number][];
      const total = entries.reduce((sum, [, w]) => sum + w, 0);
      let r = next() * total;
      for (const [key, w] of entries) {
        r -= w;
        if (r < 0) return key;
      }
      // Floating-point rounding can leave r at ~0 after the last entry.
      return entries[entries.length - 1]![0];
    },
  };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
