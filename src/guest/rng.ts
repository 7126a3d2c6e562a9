/**
 * The guest side's one random source: mulberry32, small, fast and seedable.
 * Scenario generators, hostile guests, benchmarks and the kernel's workloads
 * all draw from it, so a seed names the same run everywhere.
 *
 * Rules: a generator's sequence depends on its seed alone (no global state,
 * no Math.random), and the sequence for a seed never changes — workload
 * digests and generated scenarios pinned by tests depend on it.
 */

/**
 * mulberry32 as an object, for hot loops: the same sequence as rng(seed),
 * drawn as small integers or booleans where the caller can, so that no
 * draw returns a boxed float. The state is a signed 32-bit integer (the
 * same bits as the unsigned one): it stays a small integer.
 */
export class Rng {
  private a: number;
  constructor(seed: number) {
    this.a = seed | 0;
  }

  /** The next 32-bit output as a signed integer: its bits over 2^32 are rng(seed)'s next number. */
  next(): number {
    this.a = (this.a + 0x6d2b79f5) | 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return t ^ (t >>> 14);
  }

  /** The next number in [0, 1): exactly what rng(seed)() returns. */
  unit(): number {
    return (this.next() >>> 0) / 4294967296;
  }

  /** floor(unit() * n): an index below n. */
  below(n: number): number {
    return Math.floor(this.unit() * n);
  }

  /** unit() < p. */
  chance(p: number): boolean {
    return this.unit() < p;
  }
}

/** A generator of numbers in [0, 1) from a 32-bit seed. */
export function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.unit();
}
