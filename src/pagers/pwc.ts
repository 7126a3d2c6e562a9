/**
 * The paging-structure caches as a switch every pager spec takes (psc.ts):
 * the hardware a guest runs on has them whatever the pager, so they are on
 * by default everywhere and native, shadow and nested compare on equal
 * hardware. One grammar for all:
 *
 *   +pwc / pwc        the default sizes (DEFAULT_WALK_CACHES)
 *   -pwc              no caches: every walk starts at the top
 *   pwc=A,B,C,D       PML5E, PML4E, PDPTE and PDE cache entries (0: none)
 *   pwc=A,B,C,D/E,F,G,H/N   nested only: then the stage-2 caches and the
 *                     guest-physical TLB (omitted parts keep their defaults)
 *
 * Also here: installing them in each vCPU's MMU, and their counters, the
 * same under every pager.
 */
import type { Cpu } from '../arch/x86/cpu.js';
import { DEFAULT_WALK_CACHES, type UpperSizes, type WalkCacheConfig, WalkCaches } from '../arch/x86/psc.js';
import type { CounterDecl } from '../hypervisor/pager.js';

export const PWC_SWITCH = {
  name: 'pwc',
  description:
    'paging-structure caches (SDM 4.10.3, 29.4; default on): pwc=PML5E,PML4E,PDPTE,PDE entries (default 2,2,4,32), -pwc none',
} as const;

export const PWC_SWITCH_NESTED = {
  name: 'pwc',
  description:
    'paging-structure caches (SDM 4.10.3, 29.4; default on): pwc=GUEST/STAGE2/NTLB, GUEST and STAGE2 as PML5E,PML4E,PDPTE,PDE entries (default 2,2,4,32/2,2,4,32/16), -pwc none',
} as const;

/** Largest cache a spec may ask for: a whole table's entries. */
const MAX_ENTRIES = 512;

const NONE: UpperSizes = [0, 0, 0, 0];

/** The caches of a one-stage pager (native, shadow): no stage 2 to cache. */
export const ONE_STAGE_DEFAULT: WalkCacheConfig = { upper: DEFAULT_WALK_CACHES.upper, stage2: NONE, ntlb: 0 };

/**
 * Parse one switch of a spec if it is `pwc`: the caches (null: -pwc), a
 * one-line reason it is bad, or undefined when `part` is another switch.
 */
export function parsePwc(part: string, nested: boolean): WalkCacheConfig | null | string | undefined {
  const m = /^([+-]?)pwc(?:=(.*))?$/.exec(part);
  if (m === null) return undefined;
  const [, sign, value] = m as unknown as [string, string, string | undefined];
  const base = nested ? DEFAULT_WALK_CACHES : ONE_STAGE_DEFAULT;
  if (value === undefined) return sign === '-' ? null : base;
  if (sign === '-') return `"${part}": -pwc takes no value`;
  const groups = value.split('/');
  if (groups.length > (nested ? 3 : 1))
    return nested
      ? `"${part}": pwc= takes at most GUEST/STAGE2/NTLB`
      : `"${part}": pwc= takes four sizes (PML5E,PML4E,PDPTE,PDE); stage-2 sizes only under nested`;
  const sizes = (g: string): UpperSizes | string => {
    const xs = g.split(',');
    if (xs.length !== 4 || xs.some((x) => !/^\d+$/.test(x) || Number(x) > MAX_ENTRIES))
      return `"${part}": "${g}" is not four sizes PML5E,PML4E,PDPTE,PDE of 0 to ${MAX_ENTRIES} entries`;
    return xs.map(Number) as unknown as UpperSizes;
  };
  const upper = sizes(groups[0] as string);
  if (typeof upper === 'string') return upper;
  let stage2 = base.stage2;
  let ntlb = base.ntlb;
  if (groups[1] !== undefined) {
    const s = sizes(groups[1]);
    if (typeof s === 'string') return s;
    stage2 = s;
  }
  if (groups[2] !== undefined) {
    if (!/^\d+$/.test(groups[2]) || Number(groups[2]) > MAX_ENTRIES)
      return `"${part}": the guest-physical TLB takes 0 to ${MAX_ENTRIES} entries`;
    ntlb = Number(groups[2]);
  }
  return { upper, stage2, ntlb };
}

/** Give each vCPU's MMU its own caches (a VPID's, on hardware), or none. */
export function installPwc(cpus: readonly Cpu[], config: WalkCacheConfig | null): void {
  for (const c of cpus) c.mmu.psc = config === null ? null : new WalkCaches(config);
}

const LEVELS = [
  [5, 'pml5e', 'PML5E'],
  [4, 'pml4e', 'PML4E'],
  [3, 'pdpte', 'PDPTE'],
  [2, 'pde', 'PDE'],
] as const;

function declare(prefix: string, what: string): CounterDecl[] {
  const out: CounterDecl[] = [];
  for (const [, key, name] of LEVELS) {
    out.push(
      {
        name: `${prefix}${key}_hits`,
        kind: 'count',
        description: `${what}walks that started below a ${name}-cache entry`,
      },
      {
        name: `${prefix}${key}_misses`,
        kind: 'count',
        description: `${what}walks that looked in the ${name} cache (no deeper cache had an entry) and found nothing`,
      },
    );
  }
  out.push({
    name: `${prefix}refs_saved`,
    kind: 'count',
    description: `${what}entries not read from memory because a cache entry stood for them (walk_entry_reads already excludes them)`,
  });
  return out;
}

/** Counters of the caches of a one-stage pager (native, shadow). */
export const PWC_COUNTERS: readonly CounterDecl[] = declare('pwc.', '');

/** Counters of the caches under nested paging: the guest's, stage 2's, the guest-physical TLB's. */
export const PWC_COUNTERS_NESTED: readonly CounterDecl[] = [
  ...declare('pwc.', 'guest '),
  ...declare('pwc.s2_', 'stage-2 '),
  { name: 'pwc.ntlb_hits', kind: 'count', description: 'stage-2 translations served by the guest-physical TLB' },
  {
    name: 'pwc.ntlb_misses',
    kind: 'count',
    description: 'stage-2 translations the guest-physical TLB could not serve (walked)',
  },
  {
    name: 'pwc.ntlb_refs_saved',
    kind: 'count',
    description: 'stage-2 entries a guest-physical TLB hit stood for (its walk from the top when it was cached)',
  },
];

/** The counters' values, summed over the vCPUs (every declared name, zeros when the caches are off). */
export function pwcStats(cpus: readonly Cpu[], nested: boolean): Record<string, number> {
  const out: Record<string, number> = {};
  const stage = (prefix: string, pick: (c: Cpu) => WalkCaches['upper']): void => {
    let saved = 0;
    for (const [level, key] of LEVELS) {
      let hits = 0;
      let misses = 0;
      for (const c of cpus) {
        const n = c.mmu.psc === null ? null : (pick(c)?.counts(level) ?? null);
        if (n === null) continue;
        hits += n.hits;
        misses += n.misses;
        saved += n.saved;
      }
      out[`${prefix}${key}_hits`] = hits;
      out[`${prefix}${key}_misses`] = misses;
    }
    out[`${prefix}refs_saved`] = saved;
  };
  stage('pwc.', (c) => (c.mmu.psc as WalkCaches).upper);
  if (nested) {
    stage('pwc.s2_', (c) => (c.mmu.psc as WalkCaches).stage2);
    let hits = 0;
    let misses = 0;
    let saved = 0;
    for (const c of cpus) {
      const t = c.mmu.psc?.ntlb;
      if (t === null || t === undefined) continue;
      hits += t.hits;
      misses += t.misses;
      saved += t.saved;
    }
    out['pwc.ntlb_hits'] = hits;
    out['pwc.ntlb_misses'] = misses;
    out['pwc.ntlb_refs_saved'] = saved;
  }
  return out;
}

/** The spec form of a cache configuration (null: -pwc), for messages and docs. */
export function pwcSpec(config: WalkCacheConfig | null, nested: boolean): string {
  if (config === null) return '-pwc';
  const g = config.upper.join(',');
  return nested ? `pwc=${g}/${config.stage2.join(',')}/${config.ntlb}` : `pwc=${g}`;
}
