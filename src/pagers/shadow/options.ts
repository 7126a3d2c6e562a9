import type { WalkCacheConfig } from '../../arch/x86/psc.js';
import { ONE_STAGE_DEFAULT, PWC_SWITCH, parsePwc } from '../pwc.js';

/**
 * The shadow pager's optimizations, each switchable by name in a pager spec
 * (`shadow:-oos`, `shadow:+prefetch=16`, `shadow:-oos:-prefetch`), on by
 * default where Xen has them on. The spec is also the pager's name in the
 * statistics, so runs of variants sit side by side in `umbra compare`.
 */
export interface Optimization {
  name: string;
  description: string;
  /** Xen's name for it. */
  xen: string;
}

export const OPTIMIZATIONS: readonly Optimization[] = [
  {
    name: 'oos',
    description: 'out-of-sync l1s: the guest writes its page tables directly; snapshot, resync at its TLB flushes',
    xen: 'SHOPT_OUT_OF_SYNC',
  },
  {
    name: 'resyncall',
    description:
      "Umbra's, not Xen's: every guest TLB flush, INVLPG included, resyncs every vCPU's out-of-sync l1s (Xen: INVLPG drops one shadow entry, a CR3 write resyncs this vCPU's and updates the others')",
    xen: 'none (Xen: sh_invlpg, sh_update_cr3 with sh_resync_all)',
  },
  {
    name: 'prefetch',
    description:
      'on a shadow fault, also propagate the following guest l1 entries (=N: distance, the faulting entry and up to N-1 after it; default 32, as Xen)',
    xen: 'SHOPT_PREFETCH',
  },
  {
    name: 'fastpath',
    description: 'guest not-present and MMIO entries shadowed as reserved-bit magic entries: no guest walk',
    xen: 'SHOPT_FAST_FAULT_PATH',
  },
  {
    name: 'gnp',
    description:
      "Umbra's, not Xen's: guest-not-present magic entries with out-of-sync l1s on, and after a guest walk ending at a not-present l1 entry",
    xen: 'none (Xen makes sh_l1e_gnp entries only when built without SHOPT_OUT_OF_SYNC, in _sh_propagate)',
  },
  {
    name: 'unshadow',
    description: 'early unshadow: a table being zeroed is unshadowed instead of emulating every write',
    xen: 'SHOPT_EARLY_UNSHADOW',
  },
  {
    name: 'pool',
    description: "a bounded shadow memory pool (=N frames; default from Xen's rule), LRU eviction of top-level shadows",
    xen: 'shadow_set_allocation / shadow_prealloc',
  },
  {
    name: 'unpagedp2m',
    description:
      "Umbra's, not Xen's: a vCPU with paging off runs on the P2M itself (Xen shadows a 1:1 32-bit table of 4 MiB pages, unpaged_pagetable)",
    xen: 'none (Xen: sh_update_paging_modes with d->arch.paging.shadow.unpaged_pagetable)',
  },
  {
    name: 'superpages',
    description:
      "Umbra's, not Xen's: a guest superpage over a contiguous, uniform P2M range is shadowed by a superpage (Xen splinters every one into fl1 shadows of 4 KiB entries)",
    xen: 'none (Xen: make_fl1_shadow; 1 GiB guest pages are reserved under shadow, guest_can_use_l3_superpages)',
  },
  {
    name: 'rmap',
    description:
      "Umbra's, not Xen's: a writable reverse map finds every writable mapping of a frame at once (Xen: guesses, the last l1 found, fixup arrays, then a brute-force search)",
    xen: 'none (Xen: sh_remove_write_access, oos_fixup_add)',
  },
  {
    name: 'ldrevoke',
    description:
      "Umbra's, not Xen's: cleaning the dirty log makes the cleaned pages read-only one by one through a reverse map (Xen blows the shadow tables)",
    xen: 'none (Xen: sh_clean_dirty_bitmap calls shadow_blow_tables)',
  },
  {
    name: 'logdirty',
    description: 'log-dirty mode for migration: writes to RAM are tracked through read-only shadows',
    xen: 'paging_log_dirty_enable',
  },
  {
    ...PWC_SWITCH,
    xen: "none: the hardware's (Xen flushes every vCPU after unhooking shadows: sh_remove_shadows, shadow_blow_tables, and before reusing a freed shadow frame, shadow_alloc)",
  },
];

export interface ShadowSwitches {
  oos: boolean;
  resyncall: boolean;
  /** Prefetch window in l1 entries; 0 = off. */
  prefetch: number;
  fastpath: boolean;
  gnp: boolean;
  unshadow: boolean;
  /** Pool size in frames: 0 = the default rule, -1 = unbounded (pool off). */
  pool: number;
  unpagedp2m: boolean;
  superpages: boolean;
  rmap: boolean;
  ldrevoke: boolean;
  logdirty: boolean;
  /** The hardware's paging-structure caches over the shadows (null: none). */
  pwc: WalkCacheConfig | null;
}

/** Xen's PREFETCH_DISTANCE (shadow/multi.c). */
export const PREFETCH_DEFAULT = 32;
/** Largest pool a spec may ask for: 2^26 frames = 256 GiB of shadows, beyond any modelled guest. */
export const MAX_POOL_FRAMES = 2 ** 26;

export const DEFAULT_SWITCHES: Readonly<ShadowSwitches> = Object.freeze({
  oos: true,
  resyncall: false,
  prefetch: PREFETCH_DEFAULT,
  fastpath: true,
  gnp: false,
  unshadow: true,
  pool: 0,
  unpagedp2m: false,
  superpages: false,
  rmap: false,
  ldrevoke: false,
  logdirty: true,
  pwc: ONE_STAGE_DEFAULT,
});

/**
 * Parse `shadow[:(+|-)NAME[=N]]...`; returns the switches, or a message
 * saying what is wrong.
 */
export function parseShadowSpec(spec: string): ShadowSwitches | string {
  const parts = spec.split(':');
  if (parts[0] !== 'shadow') return `"${spec}" is not a shadow pager spec`;
  const sw: ShadowSwitches = { ...DEFAULT_SWITCHES };
  for (const part of parts.slice(1)) {
    const pwc = parsePwc(part, false);
    if (typeof pwc === 'string') return pwc;
    if (pwc !== undefined) {
      sw.pwc = pwc;
      continue;
    }
    const m = /^([+-]?)([a-z][a-z0-9]*)(?:=(\d+))?$/.exec(part);
    if (m === null) return `"${part}" in "${spec}": expected +NAME, -NAME or NAME=N`;
    const [, sign, name, value] = m as unknown as [string, string, string, string | undefined];
    if (!OPTIMIZATIONS.some((o) => o.name === name)) {
      return `unknown shadow optimization "${name}" (known: ${OPTIMIZATIONS.map((o) => o.name).join(', ')})`;
    }
    const on = sign !== '-';
    if (value !== undefined && !on) return `"${part}": a switched-off optimization takes no value`;
    if (value !== undefined && name !== 'prefetch' && name !== 'pool') return `"${part}": ${name} takes no value`;
    const n = value === undefined ? undefined : Number(value);
    if (n !== undefined && !Number.isSafeInteger(n)) return `"${part}": ${value} is too large`;
    switch (name) {
      case 'oos':
        sw.oos = on;
        break;
      case 'resyncall':
        sw.resyncall = on;
        break;
      case 'prefetch':
        if (n !== undefined && (n < 2 || n > 512)) return `"${part}": the prefetch distance is 2 to 512 entries`;
        sw.prefetch = on ? (n ?? PREFETCH_DEFAULT) : 0;
        break;
      case 'fastpath':
        sw.fastpath = on;
        break;
      case 'gnp':
        sw.gnp = on;
        break;
      case 'unshadow':
        sw.unshadow = on;
        break;
      case 'pool':
        if (n !== undefined && (n < 64 || n > MAX_POOL_FRAMES))
          return `"${part}": the pool needs at least 64 frames and at most ${MAX_POOL_FRAMES}`;
        sw.pool = on ? (n ?? 0) : -1;
        break;
      case 'unpagedp2m':
        sw.unpagedp2m = on;
        break;
      case 'superpages':
        sw.superpages = on;
        break;
      case 'rmap':
        sw.rmap = on;
        break;
      case 'ldrevoke':
        sw.ldrevoke = on;
        break;
      case 'logdirty':
        sw.logdirty = on;
        break;
    }
  }
  return sw;
}

/**
 * Xen's default shadow allocation (libxl_get_required_shadow_memory): 1 MiB
 * per vCPU plus 8 KiB per MiB of guest RAM, i.e. 256 frames per vCPU and 2
 * frames per MiB. Umbra applies it to the RAM the guest has populated (written)
 * so far, so a sparse guest's holes do not size its pool.
 */
export function defaultPoolFrames(vcpus: number, ramBytes: number): number {
  return 256 * vcpus + 2 * Math.ceil(ramBytes / 2 ** 20);
}

/** Frames the pool keeps free before an exit that may build shadows (one path, splinters, PAE's four PDs). */
export const PREALLOC_FRAMES = 8;

/**
 * The smallest pool that always makes progress without thrashing on the
 * roots alone: per vCPU, the top-level shadows it runs on (four PDs for PAE
 * and 32-bit guests), its out-of-sync snapshots (3) and one more; plus two
 * exits' headroom. (Xen's floor, shadow_min_acceptable_pages, is 128 frames
 * per vCPU because one x86 instruction may touch ~30 pages at once; a
 * modelled operation touches one.)
 */
export function minPoolFrames(vcpus: number): number {
  return 8 * vcpus + 2 * PREALLOC_FRAMES;
}
