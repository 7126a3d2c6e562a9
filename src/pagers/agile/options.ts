/**
 * The agile pager's spec: `agile` (EPT, the default), `agile:ept`,
 * `agile:npt`, then switches: `threshold=N` (write traps a shadowed guest
 * table may take in one interval before it switches to nested mode),
 * `interval=N` (the policy's clock: guest memory operations, all vCPUs
 * together, between two looks at the nested-mode tables), `start=shadow|
 * nested` (where each new address space starts), `levels=4|5` (stage-2
 * levels). The spec is also the pager's name in the statistics.
 */
import { type Stage2Kind, splitStage2Spec } from '../nested/options.js';

export type AgileStart = 'shadow' | 'nested';

export interface AgileSwitches {
  kind: Stage2Kind;
  levels: 4 | 5;
  threshold: number;
  interval: number;
  start: AgileStart;
}

export const AGILE_SWITCHES: readonly { name: string; description: string }[] = [
  { name: 'ept', description: 'Intel EPT as the stage-2 format (the default)' },
  { name: 'npt', description: 'AMD nested paging as the stage-2 format' },
  {
    name: 'threshold',
    description:
      'write traps a shadowed guest table may take in one interval; one more switches it (and what lies below it) to nested mode (default 2)',
  },
  {
    name: 'interval',
    description:
      "the policy's clock, in guest memory operations of all vCPUs: write-trap counts restart and nested-mode tables are compared with their snapshot once per interval; unchanged over a whole interval, a table goes back to shadow mode (default 20000)",
  },
  {
    name: 'start',
    description:
      'where a new address space starts: =shadow (default: every guest table shadowed until it is written often) or =nested (its root in nested mode until it settles)',
  },
  { name: 'levels', description: 'stage-2 levels, 4 (default) or 5' },
];

export const DEFAULT_AGILE: AgileSwitches = {
  kind: 'ept',
  levels: 4,
  threshold: 2,
  interval: 20000,
  start: 'shadow',
};

/** Largest threshold or interval a spec may give. */
const MAX_COUNT = 1e12;

/** Parse an agile spec into switches, or return the one-line reason it is bad. */
export function parseAgileSpec(spec: string): AgileSwitches | string {
  const split = splitStage2Spec(spec, 'agile');
  if (typeof split === 'string') return split;
  const sw: AgileSwitches = { ...DEFAULT_AGILE, kind: split.kind ?? DEFAULT_AGILE.kind };
  for (const { text, sign, name, value } of split.switches) {
    // Agile's switches all take values: none is turned on or off by a sign.
    if (sign !== '') return `"${spec}": bad switch "${text}"`;
    if (name === 'threshold' || name === 'interval') {
      const n = value !== undefined && /^[0-9]+$/.test(value) ? Number(value) : Number.NaN;
      const min = name === 'threshold' ? 0 : 1;
      if (!Number.isSafeInteger(n) || n < min || n > MAX_COUNT)
        return `"${spec}": ${name} takes =N, an integer from ${min} to ${MAX_COUNT}`;
      sw[name] = n;
    } else if (name === 'start') {
      if (value !== 'shadow' && value !== 'nested') return `"${spec}": start takes =shadow or =nested`;
      sw.start = value;
    } else if (name === 'levels') {
      if (value !== '4' && value !== '5') return `"${spec}": levels takes =4 or =5`;
      sw.levels = value === '5' ? 5 : 4;
    } else {
      return `"${spec}": unknown switch "${name}" (known: ${AGILE_SWITCHES.map((s) => s.name).join(', ')})`;
    }
  }
  return sw;
}
