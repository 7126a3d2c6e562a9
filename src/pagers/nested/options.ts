/**
 * The nested pager's spec: `nested` (EPT, the default), `nested:ept`,
 * `nested:npt`, then switches: `levels=4|5` (the EPTP page-walk length, or
 * the host's CR4.LA57 under NPT), `+ad`/`-ad` (EPT accessed and dirty
 * flags, EPTP bit 6; NPT always has them), `mmio=misconfig|violation` (how
 * guest-physical addresses with no RAM behind them are left in stage 2), and
 * `+large`/`-large` (stage-2 superpages where the domain's frames allow),
 * and `logdirty=wp|pml` (how log-dirty mode sees writes: write-protected
 * stage-2 leaves, or page-modification logging). The spec is also the
 * pager's name in the statistics.
 */

import { DEFAULT_WALK_CACHES, type WalkCacheConfig } from '../../arch/x86/psc.js';
import { PWC_SWITCH_NESTED, parsePwc } from '../pwc.js';

export type Stage2Kind = 'ept' | 'npt';
export type MmioMode = 'misconfig' | 'violation';
export type LogDirtyMode = 'wp' | 'pml';

export interface NestedSwitches {
  kind: Stage2Kind;
  levels: 4 | 5;
  /** EPT only: EPTP bit 6. */
  ad: boolean;
  mmio: MmioMode;
  large: boolean;
  logdirty: LogDirtyMode;
  /** Paging-structure caches, guest and stage 2, and the guest-physical TLB (pwc.ts; null: none). */
  pwc: WalkCacheConfig | null;
}

export const NESTED_SWITCHES: readonly { name: string; description: string }[] = [
  { name: 'ept', description: 'Intel EPT (SDM vol. 3C, 29.3): the default format' },
  { name: 'npt', description: "AMD nested paging (APM vol. 2, 15.25): the host's long-mode entries under nCR3" },
  {
    name: 'levels',
    description: 'stage-2 levels, 4 (default) or 5: the EPTP page-walk length, or the host CR4.LA57 under NPT',
  },
  {
    name: 'ad',
    description:
      'EPT accessed/dirty flags (EPTP bit 6; default on): stage-2 A/D set by hardware, guest table reads count as writes',
  },
  {
    name: 'mmio',
    description:
      "gfns with no RAM (above RAM, or taken away): =misconfig (default, KVM's fast path: a misconfigured EPT entry or an NPT entry with reserved bits, installed on first use) or =violation (no entry: every access is a violation)",
  },
  {
    name: 'large',
    description:
      'stage-2 2 MiB and 1 GiB pages where the guest frames are contiguous in machine memory and all RAM (default on)',
  },
  {
    name: 'logdirty',
    description:
      "log-dirty mode (migration): =wp (Xen's HAP way: RAM leaves become ram_logdirty and read-only, a write takes a violation that logs it) or =pml (page-modification logging: the CPU logs each page whose EPT dirty flag it sets; EPT with A/D only). Default: pml where it can be, as Xen on a CPU with PML; wp under NPT or -ad",
  },
  PWC_SWITCH_NESTED,
];

export const DEFAULT_NESTED: NestedSwitches = {
  kind: 'ept',
  levels: 4,
  ad: true,
  mmio: 'misconfig',
  large: true,
  logdirty: 'pml',
  pwc: DEFAULT_WALK_CACHES,
};

/** One `[+|-]name[=value]` switch of a spec, as written (`text`). */
export interface SpecSwitch {
  text: string;
  sign: '' | '+' | '-';
  name: string;
  value: string | undefined;
}

/**
 * The shape every pager over a stage 2 shares: `PAGER[:ept|:npt][:switch…]`.
 * Returns the format (if given) and the switches in order, or the one-line
 * reason the spec is bad (not this pager, a malformed or repeated switch, a
 * format given later than first). Each pager then reads its own switches.
 */
export function splitStage2Spec(
  spec: string,
  pager: string,
): { kind: Stage2Kind | undefined; switches: SpecSwitch[] } | string {
  const parts = spec.split(':');
  if (parts[0] !== pager) return `"${spec}": not ${/^[aeiou]/.test(pager) ? 'an' : 'a'} ${pager} pager spec`;
  const kind = parts[1] === 'ept' || parts[1] === 'npt' ? parts[1] : undefined;
  const switches: SpecSwitch[] = [];
  for (const text of parts.slice(kind === undefined ? 1 : 2)) {
    const m = /^([+-]?)([a-z]+)(?:=(.*))?$/.exec(text);
    if (m === null) return `"${spec}": bad switch "${text}"`;
    const [, sign, name, value] = m as unknown as [string, '' | '+' | '-', string, string | undefined];
    if (switches.some((w) => w.name === name)) return `"${spec}": switch "${name}" given twice`;
    if (name === 'ept' || name === 'npt')
      return `"${spec}": the format (ept or npt) comes first, right after "${pager}"`;
    switches.push({ text, sign, name, value });
  }
  return { kind, switches };
}

/** Parse a nested spec into switches, or return the one-line reason it is bad. */
export function parseNestedSpec(spec: string): NestedSwitches | string {
  const split = splitStage2Spec(spec, 'nested');
  if (typeof split === 'string') return split;
  const sw: NestedSwitches = { ...DEFAULT_NESTED, kind: split.kind ?? DEFAULT_NESTED.kind };
  const seen = new Set<string>();
  for (const { text: p, sign, name, value } of split.switches) {
    seen.add(name);
    if (name === 'levels') {
      if (sign !== '' || (value !== '4' && value !== '5')) return `"${spec}": levels takes =4 or =5`;
      sw.levels = value === '5' ? 5 : 4;
    } else if (name === 'mmio') {
      if (sign !== '' || (value !== 'misconfig' && value !== 'violation'))
        return `"${spec}": mmio takes =misconfig or =violation`;
      sw.mmio = value;
    } else if (name === 'logdirty') {
      if (sign !== '' || (value !== 'wp' && value !== 'pml')) return `"${spec}": logdirty takes =wp or =pml`;
      sw.logdirty = value;
    } else if (name === 'pwc') {
      const pwc = parsePwc(p, true);
      if (typeof pwc === 'string') return `"${spec}": ${pwc}`;
      sw.pwc = pwc ?? null;
    } else if (name === 'ad' || name === 'large') {
      if (value !== undefined) return `"${spec}": ${name} takes no value (+${name} or -${name})`;
      if (name === 'ad' && sw.kind === 'npt') return `"${spec}": ad is an EPT switch (NPT always has A/D flags)`;
      sw[name] = sign !== '-';
    } else {
      return `"${spec}": unknown switch "${name}" (known: ${NESTED_SWITCHES.map((s) => s.name).join(', ')})`;
    }
  }
  if (!seen.has('logdirty')) {
    // Xen uses PML whenever the CPU has it, and PML needs EPT A/D (vmcs.c, vmx_init_vmcs_config): else write protection.
    sw.logdirty = sw.kind === 'ept' && sw.ad ? 'pml' : 'wp';
  } else if (sw.logdirty === 'pml' && sw.kind === 'npt') {
    return `"${spec}": logdirty=pml is Intel's page-modification logging; Umbra's NPT has none (use logdirty=wp)`;
  } else if (sw.logdirty === 'pml' && !sw.ad) {
    return `"${spec}": logdirty=pml needs EPT accessed/dirty flags (EPTP bit 6, SDM vol. 3C 29.3.6); drop -ad or use logdirty=wp`;
  }
  return sw;
}
