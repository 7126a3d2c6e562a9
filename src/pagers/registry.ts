/**
 * The pager registry: every pager Umbra has, by the name a pager spec starts
 * with, and how to build one from its spec. The CLI, the benches, the fuzzer
 * and the tests all build pagers here, so a new pager (nested paging, agile
 * paging) registers once and is at once runnable everywhere and covered by
 * every test that loops over `PAGERS` and their `variants`.
 *
 * A spec is the pager's name, optionally with switches: `native`, `shadow`,
 * `shadow:-oos:prefetch=32:pool=512`. It is also the pager's name in the
 * statistics.
 */
import type { WalkCacheConfig } from '../arch/x86/psc.js';
import { ConfigError, type CounterDecl, type Pager } from '../hypervisor/pager.js';
import { AgilePager } from './agile/agile.js';
import { AGILE_SWITCHES, parseAgileSpec } from './agile/options.js';
import { NativePager } from './native/native.js';
import { NestedPager } from './nested/nested.js';
import { NESTED_SWITCHES, parseNestedSpec } from './nested/options.js';
import { ONE_STAGE_DEFAULT, PWC_COUNTERS, PWC_SWITCH, parsePwc } from './pwc.js';
import { minPoolFrames, OPTIMIZATIONS, parseShadowSpec } from './shadow/options.js';
import { ShadowPager } from './shadow/shadow.js';
import { Xen30Pager } from './xen30/xen30.js';

/** How a front end wants its pagers built. */
export interface PagerOptions {
  /** Run the pager's isolation checker after every exit. */
  check?: boolean;
  /** Shadow pool size in frames for a shadow spec that does not set one itself (--shadow-pool). */
  shadowPool?: number;
}

export interface PagerKind {
  readonly name: string;
  readonly description: string;
  /** Switches a spec may name (empty: none). */
  readonly switches: readonly { name: string; description: string }[];
  /** Every counter its stats() reports, with what it means (`umbra counters`). */
  readonly counters: readonly CounterDecl[];
  /** Build a pager from a spec of this kind; a bad spec throws PagerSpecError. */
  create(spec: string, opts: PagerOptions): Pager;
  /**
   * The specs a test or the fuzzer should run for a guest with `vcpus`
   * vCPUs: every combination of the switches that change what the pager
   * does (values chosen to reach each mechanism's edge cases).
   */
  variants(vcpus: number): string[];
  /**
   * A fixed sample of the variants for tests that cannot afford them all (a
   * guest kernel workload per spec): the pager's default spec first, then
   * each switch the variants combine flipped once from its default, every
   * switch off, and every switch on at its edge values.
   */
  sample(vcpus: number): string[];
}

/** A pager spec that names no pager or has a bad switch: the message says which and why. */
export class PagerSpecError extends ConfigError {}

/** Parse the `pwc` switch of a one-stage spec's parts (native, xen30): the caches, or the default. */
function onePwc(spec: string, parts: readonly string[], other: string): WalkCacheConfig | null {
  let pwc: WalkCacheConfig | null = ONE_STAGE_DEFAULT;
  for (const part of parts) {
    const r = parsePwc(part, false);
    if (r === undefined) throw new PagerSpecError(`"${part}" in "${spec}": ${other}`);
    if (typeof r === 'string') throw new PagerSpecError(r);
    pwc = r;
  }
  return pwc;
}

const native: PagerKind = {
  name: 'native',
  description: 'no virtualization: the hardware walks the guest tables (the reference)',
  switches: [PWC_SWITCH],
  counters: PWC_COUNTERS,
  create(spec) {
    if (spec !== 'native' && !spec.startsWith('native:')) throw new PagerSpecError(`"${spec}": not a native spec`);
    const pwc = onePwc(spec, spec.split(':').slice(1), 'native takes only the pwc switch (+pwc, -pwc, pwc=SIZES)');
    return new NativePager({ name: spec, pwc });
  },
  // The hardware with and without its paging-structure caches.
  variants: () => ['native', 'native:-pwc'],
  sample: () => ['native', 'native:-pwc'],
};

/** Prefetch distances the variants try: off, one entry after the fault, Xen's 32, a whole table. */
const PREFETCH_WINDOWS = [0, 2, 32, 512] as const;
/** Out-of-sync l1s resynced as Xen does, at every flush on every vCPU (Umbra's), or no out-of-sync l1s. */
const OOS = ['+oos:-resyncall', '+oos:+resyncall', '-oos:-resyncall'] as const;
/** Magic entries: Xen's fast path (MMIO), with Umbra's guest-not-present entries, or none. */
const MAGIC = ['+fastpath:-gnp', '+fastpath:+gnp', '-fastpath:-gnp'] as const;

/** The smallest pool the variants try: evictions and blowouts on every guest. */
const smallPool = (vcpus: number): number => Math.max(64, minPoolFrames(vcpus));

const shadow: PagerKind = {
  name: 'shadow',
  description: "Xen's shadow paging over a P2M (translated mode), with its optimizations as switches",
  switches: OPTIMIZATIONS,
  counters: ShadowPager.counters,
  create(spec, opts) {
    const sw = parseShadowSpec(spec);
    if (typeof sw === 'string') throw new PagerSpecError(sw);
    if (opts.shadowPool !== undefined && !/(^|:)[+-]?pool/.test(spec)) sw.pool = opts.shadowPool;
    return new ShadowPager({ check: opts.check, name: spec, switches: sw });
  },
  // Every combination of the switches, except that Umbra's two other
  // mappings (shadow superpages, unpaged vCPUs on the P2M) go together.
  variants(vcpus) {
    const specs: string[] = [];
    const small = smallPool(vcpus);
    for (const oos of OOS)
      for (const prefetch of PREFETCH_WINDOWS)
        for (const magic of MAGIC)
          for (const unshadow of [true, false])
            for (const pool of ['-pool', '+pool', `pool=${small}`])
              for (const rmap of ['-rmap', '+rmap'])
                for (const superpages of ['-superpages:-unpagedp2m', '+superpages:+unpagedp2m']) {
                  const parts = [
                    oos,
                    prefetch === 0 ? '-prefetch' : `prefetch=${prefetch}`,
                    magic,
                    `${unshadow ? '+' : '-'}unshadow`,
                    pool,
                    rmap,
                    superpages,
                  ];
                  specs.push(`shadow:${parts.join(':')}`);
                }
    return specs;
  },
  sample(vcpus) {
    // Each switch flipped once from its default (resyncall, gnp, rmap and superpages are off by default).
    // (ldrevoke and logdirty act only in log-dirty mode, which migrate tests cover.)
    const flips = [
      '-oos',
      '+resyncall',
      '-prefetch',
      '-fastpath',
      '+gnp',
      '-unshadow',
      '-pool',
      '+rmap',
      '+superpages',
      '+unpagedp2m',
    ];
    return [
      'shadow',
      ...flips.map((o) => `shadow:${o}`),
      'shadow:-oos:-resyncall:-prefetch:-fastpath:-gnp:-unshadow:-pool:-rmap:-superpages:-unpagedp2m',
      `shadow:+oos:+resyncall:prefetch=512:+fastpath:+gnp:+unshadow:pool=${smallPool(vcpus)}:+rmap:+superpages:+unpagedp2m`, // a whole table; the smallest pool
    ];
  },
};

const XEN30_SWITCHES = [
  {
    name: 'logdirty',
    description: "shadow log-dirty mode for migration (Xen 3.0's SHM_log_dirty: every clean throws every shadow away)",
  },
  PWC_SWITCH,
] as const;

const nested: PagerKind = {
  name: 'nested',
  description:
    'hardware-assisted paging: the guest walks its own tables, every guest-physical address through EPT or NPT',
  switches: NESTED_SWITCHES,
  counters: NestedPager.counters,
  create(spec, opts) {
    const sw = parseNestedSpec(spec);
    if (typeof sw === 'string') throw new PagerSpecError(sw);
    return new NestedPager({ check: opts.check, name: spec, switches: sw });
  },
  // Every combination: 16 EPT, 8 NPT (the vCPU count changes nothing).
  // logdirty acts only in log-dirty mode (migration): EPT with A/D takes
  // both ways, pml with mmio=misconfig and wp with mmio=violation, rather
  // than doubling the list; without A/D and under NPT only wp exists.
  // The caches are off in half of them, by the parity of the other
  // switches, so that each value of every switch runs with and without them.
  variants() {
    const specs: string[] = [];
    for (const kind of ['ept', 'npt'] as const)
      for (const levels of [4, 5])
        for (const ad of kind === 'ept' ? ['+ad', '-ad'] : [''])
          for (const mmio of ['misconfig', 'violation'])
            for (const large of ['+large', '-large']) {
              const logdirty = ad === '+ad' ? `logdirty=${mmio === 'misconfig' ? 'pml' : 'wp'}` : 'logdirty=wp';
              const odd = [kind === 'npt', levels === 5, ad === '-ad', mmio === 'violation', large === '-large'];
              const pwc = odd.filter((x) => x).length % 2 === 1 ? '-pwc' : '';
              const parts = [`nested:${kind}`, `levels=${levels}`, ad, `mmio=${mmio}`, large, logdirty, pwc].filter(
                (p) => p !== '',
              );
              specs.push(parts.join(':'));
            }
    return specs;
  },
  sample() {
    return [
      'nested',
      'nested:npt',
      'nested:ept:levels=5',
      'nested:ept:-ad',
      'nested:ept:mmio=violation',
      'nested:ept:-large',
      'nested:ept:logdirty=wp',
      'nested:-pwc',
      'nested:ept:-ad:mmio=violation:-large:logdirty=wp:-pwc', // every switch off
      'nested:npt:levels=5:mmio=misconfig:+large:logdirty=wp', // NPT, every switch on, 5 levels
    ];
  },
};

const xen30: PagerKind = {
  name: 'shadow:xen30',
  description:
    "Xen 3.0.2's shadow paging (2006): the 256-bucket shadow_ht, roots pinned when made, l1 and upper tables out of sync with snapshots on an unbounded list, sync-all at every CR3 load, hl2 tables (docs/history.md)",
  switches: XEN30_SWITCHES,
  counters: Xen30Pager.counters,
  create(spec, opts) {
    let logdirty = true;
    const rest: string[] = [];
    for (const part of spec.split(':').slice(2)) {
      const m = /^([+-]?)logdirty$/.exec(part);
      if (m === null) rest.push(part);
      else logdirty = m[1] !== '-';
    }
    const pwc = onePwc(spec, rest, 'shadow:xen30 takes only +logdirty, -logdirty and the pwc switch');
    // --shadow-pool sizes the shadow pager's pool; Xen 3.0 bounded none, so it has nothing to size here (as native).
    return new Xen30Pager({ check: opts.check, name: spec, logdirty, pwc });
  },
  variants: () => ['shadow:xen30'],
  sample: () => ['shadow:xen30'],
};

/** Thresholds the variants try: every write trap switches, the default, never. */
const AGILE_THRESHOLDS = ['threshold=0', '', 'threshold=1000000000000'] as const;

const agile: PagerKind = {
  name: 'agile',
  description:
    'agile paging (Gandhi et al., ISCA 2016; a proposed extension): walks start in shadow tables and switch to nested at a marked entry; guest tables written often go nested, and back to shadow when they settle',
  switches: AGILE_SWITCHES,
  counters: AgilePager.counters,
  create(spec, opts) {
    const sw = parseAgileSpec(spec);
    if (typeof sw === 'string') throw new PagerSpecError(sw);
    return new AgilePager({ check: opts.check, name: spec, switches: sw });
  },
  // Every combination of format, threshold, start and interval (1: the policy looks at every exit), on 4-level stage 2.
  variants() {
    const specs: string[] = [];
    for (const kind of ['ept', 'npt'])
      for (const threshold of AGILE_THRESHOLDS)
        for (const start of ['', 'start=nested'])
          for (const interval of ['', 'interval=1']) {
            specs.push([`agile:${kind}`, threshold, start, interval].filter((p) => p !== '').join(':'));
          }
    specs.push('agile:ept:levels=5');
    return specs;
  },
  sample() {
    return [
      'agile',
      'agile:npt',
      'agile:threshold=0',
      'agile:threshold=1000000000000',
      'agile:start=nested',
      'agile:interval=1',
      'agile:levels=5',
      'agile:npt:threshold=0:interval=1:start=nested:levels=5', // every switch at its edge
    ];
  },
};

/** Every registered pager, the reference first. */
export const PAGERS: readonly PagerKind[] = [native, shadow, xen30, nested, agile];

/** The kind a spec names: the longest registered name that is the spec or begins it before a ':'. */
export function pagerKind(spec: string): PagerKind | undefined {
  let best: PagerKind | undefined;
  for (const k of PAGERS) {
    if ((spec === k.name || spec.startsWith(`${k.name}:`)) && (best === undefined || k.name.length > best.name.length))
      best = k;
  }
  return best;
}

/** Build a pager from its spec (throws PagerSpecError naming the known pagers). */
export function createPager(spec: string, opts: PagerOptions = {}): Pager {
  const kind = pagerKind(spec);
  if (kind === undefined) {
    throw new PagerSpecError(
      `unknown pager "${spec}" (known: ${PAGERS.map((k) => k.name).join(', ')}; e.g. shadow:-oos:prefetch=8)`,
    );
  }
  return kind.create(spec, opts);
}

/** Every variant of every non-reference pager for a guest with `vcpus` vCPUs. */
export function allVariants(vcpus: number): string[] {
  return PAGERS.filter((k) => k !== native).flatMap((k) => k.variants(vcpus));
}

/** The sample of every non-reference pager's variants (`PagerKind.sample`), each pager's default spec first. */
export function sampleVariants(vcpus: number): string[] {
  return PAGERS.filter((k) => k !== native).flatMap((k) => k.sample(vcpus));
}

/** The default spec of every non-reference pager (its name). */
export function defaultSpecs(): string[] {
  return PAGERS.filter((k) => k !== native).map((k) => k.name);
}
