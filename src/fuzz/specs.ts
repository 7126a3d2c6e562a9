/**
 * The shadow pager specs a differential fuzzer runs: every combination of
 * the switches that change how shadows are built and kept (options.ts) —
 * out-of-sync l1s, the prefetch window, the fast path, early unshadow and
 * the pool (off, Xen's default rule, or as small as the vCPU count allows).
 * Log-dirty only tracks writes for migration, so it is left at its default.
 */
import { minPoolFrames, parseShadowSpec, type ShadowSwitches } from '../pagers/shadow/options.js';

export const PREFETCH_WINDOWS = [0, 1, 32, 512] as const;
export const POOLS = ['off', 'default', 'small'] as const;

/** The smallest pool the pager accepts for `vcpus` vCPUs (and a spec's minimum of 64). */
export function smallPool(vcpus: number): number {
  return Math.max(64, minPoolFrames(vcpus));
}

/** Every spec, for a guest with `vcpus` vCPUs (96 of them). */
export function allSpecs(vcpus: number): string[] {
  const specs: string[] = [];
  for (const oos of [true, false])
    for (const prefetch of PREFETCH_WINDOWS)
      for (const fastpath of [true, false])
        for (const unshadow of [true, false])
          for (const pool of POOLS) {
            const parts = [
              `${oos ? '+' : '-'}oos`,
              prefetch === 0 ? '-prefetch' : `prefetch=${prefetch}`,
              `${fastpath ? '+' : '-'}fastpath`,
              `${unshadow ? '+' : '-'}unshadow`,
              pool === 'off' ? '-pool' : pool === 'default' ? '+pool' : `pool=${smallPool(vcpus)}`,
            ];
            specs.push(`shadow:${parts.join(':')}`);
          }
  return specs;
}

/** The switches of a spec (throws on a bad one: specs here are built, not typed). */
export function switchesOf(spec: string): ShadowSwitches {
  const sw = parseShadowSpec(spec);
  if (typeof sw === 'string') throw new Error(sw);
  return sw;
}
