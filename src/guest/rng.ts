/**
 * The guest side's one random source: mulberry32, small, fast and seedable.
 * Scenario generators, hostile guests, benchmarks and the kernel's workloads
 * all draw from it, so a seed names the same run everywhere.
 *
 * Rules: a generator's sequence depends on its seed alone (no global state,
 * no Math.random), and the sequence for a seed never changes — workload
 * digests and generated scenarios pinned by tests depend on it.
 */

/** A generator of numbers in [0, 1) from a 32-bit seed. */
export function rng(seed: number): () => number {
  // The state is kept as a signed 32-bit integer (the same bits): a uint32
  // above 2^31 would be boxed in the closure's context on every call.
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
