/**
 * An SVG chart of a comparison: modelled cycles per pager, stacked by what
 * they were spent on, and VM exits per pager by cause. Drawn with Vega-Lite
 * in Node (no canvas: Vega's headless view renders SVG directly). Vega is
 * loaded on first use, so commands that never plot do not pay for it.
 */

import { COST_CATEGORIES, type CostCategory, type CounterDecl } from '../hypervisor/pager.js';
import { columnNames, formatCell, orderRuns } from './compare.js';
import {
  type CostModel,
  type CounterDecls,
  DEFAULT_COSTS,
  declaredCounters,
  exitCause,
  exitCounters,
  modelCycles,
  pagerCounters,
  pagerParts,
  runCounters,
} from './costs.js';
import type { Stats } from './stats.js';

/** What a pager's parts of each cost category are drawn as. */
const CATEGORY_GROUPS: Record<CostCategory, string> = {
  exit: 'VM exit round trips',
  handler: 'exit handlers',
  emulation: 'instruction emulation',
  upkeep: 'shadow table upkeep',
  shootdown: 'TLB shootdowns',
};

/** Groups of the parts the model prices for every run (the CPU's and the guest's), bottom first. */
const FIXED_GROUPS: ReadonlyArray<[group: string, parts: readonly string[]]> = [
  ['TLB-hit operations', ['tlb_hit_ops']],
  ['TLB misses and page walks', ['tlb_miss_ops', 'walks']],
  ['guest CR3 writes, INVLPG', ['guest_control']],
  ['guest exception delivery', ['guest_faults']],
];

/** Groups in stacking order (bottom first): the CPU's and the guest's, then the pager's by category. */
const GROUP_ORDER = [...FIXED_GROUPS.map(([g]) => g), ...COST_CATEGORIES.map((c) => CATEGORY_GROUPS[c]), 'other'];

/**
 * The group a part of modelled cycles is drawn in: a pager's parts by the
 * category its counters declare (`counters`), exit round trips (exit.*) as such.
 */
export function partGroup(part: string, counters: readonly CounterDecl[] = []): string {
  const fixed = FIXED_GROUPS.find(([, parts]) => parts.includes(part));
  if (fixed !== undefined) return fixed[0];
  // The model's own names: VM exit round trips by cause, and the guest kernel's shootdown IPIs.
  if (part.startsWith('exit.')) return CATEGORY_GROUPS.exit;
  if (part === 'guest_shootdowns') return CATEGORY_GROUPS.shootdown;
  const mine = pagerParts(counters).find((p) => p.part === part);
  return mine === undefined ? 'other' : CATEGORY_GROUPS[mine.category];
}

export interface PlotData {
  pagers: string[];
  /** Cost groups present in any run, in stacking order. */
  groups: string[];
  cycles: Array<{ pager: string; group: string; cycles: number; order: number }>;
  exits: Array<{ pager: string; cause: string; exits: number }>;
  /** Each column's total and its label over the bar: overhead vs the baseline (column 0). */
  totals: Array<{ pager: string; cycles: number; label: string }>;
}

/** The figures the chart shows, as plain records, columns ordered as in `compareRows`. */
export function plotData(
  runs: readonly Stats[],
  costs: Readonly<CostModel> = DEFAULT_COSTS,
  opts: PlotOptions = {},
): PlotData {
  const ordered = orderRuns(runs, opts.baseline);
  const pagers = columnNames(ordered);
  const cycles: PlotData['cycles'] = [];
  const exits: PlotData['exits'] = [];
  const names = GROUP_ORDER;
  for (const [i, run] of ordered.entries()) {
    const pager = pagers[i] as string;
    const decls = runCounters(run, opts.counters ?? declaredCounters);
    const byGroup = new Map<string, number>();
    for (const [part, c] of Object.entries(modelCycles(run, costs, decls).parts)) {
      const g = partGroup(part, decls);
      byGroup.set(g, (byGroup.get(g) ?? 0) + c);
    }
    for (const [group, c] of byGroup) cycles.push({ pager, group, cycles: c, order: names.indexOf(group) });
    const counters = pagerCounters(run);
    for (const e of exitCounters(run, decls)) {
      const n = counters[e.name] ?? 0;
      if (n > 0) exits.push({ pager, cause: exitCause(e), exits: n });
    }
  }
  const groups = names.filter((g) => cycles.some((c) => c.group === g));
  const sums = pagers.map((p) => cycles.filter((c) => c.pager === p).reduce((a, c) => a + c.cycles, 0));
  const base = sums[0] ?? 0;
  const totals = pagers.map((pager, i) => {
    const t = sums[i] ?? 0;
    const label = i === 0 ? 'baseline' : base > 0 ? formatCell(((t - base) / base) * 100, 'percent') : '';
    return { pager, cycles: t, label };
  });
  return { pagers, groups, cycles, exits, totals };
}

/** The Vega-Lite specification of the chart. */
export function plotSpec(data: PlotData, title = 'Umbra: pagers compared'): Record<string, unknown> {
  const x = {
    field: 'pager',
    type: 'nominal',
    title: 'pager',
    sort: data.pagers,
    scale: { domain: data.pagers },
    axis: { labelAngle: 0 },
  };
  const width = Math.max(180, 80 * data.pagers.length);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, anchor: 'start', fontSize: 15, offset: 14 },
    config: { font: 'sans-serif', view: { stroke: null }, legend: { labelLimit: 320 } },
    vconcat: [
      {
        title: 'Modelled cycles by where they go',
        width,
        height: 240,
        layer: [
          {
            data: { values: data.cycles },
            mark: 'bar',
            encoding: {
              x,
              y: {
                field: 'cycles',
                type: 'quantitative',
                stack: 'zero',
                title: 'modelled cycles',
                axis: { format: '~s' },
              },
              color: {
                field: 'group',
                type: 'nominal',
                title: 'part',
                scale: { domain: data.groups, scheme: 'tableau10' },
              },
              order: { field: 'order', type: 'quantitative' },
            },
          },
          {
            data: { values: data.totals },
            mark: { type: 'text', dy: -7, fontSize: 11 },
            encoding: { x, y: { field: 'cycles', type: 'quantitative' }, text: { field: 'label' } },
          },
        ],
      },
      {
        title: 'VM exits by cause',
        width,
        height: 170,
        data: { values: data.exits },
        mark: 'bar',
        encoding: {
          x,
          y: { field: 'exits', type: 'quantitative', stack: 'zero', title: 'VM exits', axis: { format: '~s' } },
          color: { field: 'cause', type: 'nominal', title: 'exit cause', scale: { scheme: 'set2' } },
        },
      },
    ],
    resolve: { scale: { color: 'independent' } },
  };
}

export interface PlotOptions {
  /** Baseline pager, as in `compareRows`. */
  baseline?: string;
  title?: string;
  /** What each run's pager counts, as in `compareRows`. */
  counters?: CounterDecls;
}

/** Render the chart of these runs as an SVG document. */
export async function plotSvg(
  runs: readonly Stats[],
  costs: Readonly<CostModel> = DEFAULT_COSTS,
  opts: PlotOptions = {},
): Promise<string> {
  return renderSvg(plotSpec(plotData(runs, costs, opts), opts.title));
}

/** Render any Vega-Lite specification as an SVG document (the libraries load on first use). */
export async function renderSvg(vlSpec: Record<string, unknown>): Promise<string> {
  const [vega, vl] = await Promise.all([import('vega'), import('vega-lite')]);
  const spec = vl.compile(vlSpec as unknown as Parameters<typeof vl.compile>[0]).spec;
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
