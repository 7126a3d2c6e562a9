/**
 * Shadow or nested paging: where each wins. Sweeps the mix workload's two
 * dials — page-table edits per 1,000 accesses and the heap the accesses
 * roam over (so the TLB miss rate) — and runs every cell under native and
 * each pager, checking that the guest saw the same under all of them. The
 * heap's set-up (mapping and first touch of every page) is measured apart
 * and subtracted, so the figures are the steady state's. Prints a markdown
 * table of modelled overhead against native, the crossover edit
 * rate per footprint (where the cheaper pager changes), and writes the
 * figures as JSON and a chart as SVG.
 *
 *   npm run bench:crossover [-- --size 0.2] [--pagers shadow,nested] [--out DIR]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type MixDials, mixWorkload } from '../src/guest/kernel/mix.js';
import { runWorkload } from '../src/guest/kernel/run.js';
import { useNodeSha256 } from '../src/io/sha256.js';
import { DEFAULT_COSTS, modelCycles } from '../src/metrics/costs.js';
import { renderSvg } from '../src/metrics/plot.js';
import { collectStats } from '../src/metrics/stats.js';
import { createPager } from '../src/pagers/registry.js';

useNodeSha256();

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? (process.argv[i + 1] as string) : fallback;
}

const size = Number(arg('size', '0.2'));
const pagers = arg('pagers', 'shadow,nested').split(',');
const out = arg('out', '');
const EDITS = arg('edits', '0,1,3,10,30,100').split(',').map(Number);
const FOOTPRINTS = arg('footprints', '2,8,32,128,512').split(',').map(Number);
if (out !== '') mkdirSync(out, { recursive: true }); // check the output path before the long work

interface Cell {
  editsPerK: number;
  footprintMiB: number;
  tlbMissPerK: number;
  pteWritesPerK: number;
  /** Modelled overhead against native, percent, by pager spec. */
  overhead: Record<string, number>;
}

/** One run of a cell; the steady state is this minus the same run with setupOnly. */
function run(d: MixDials, spec: string) {
  const w = mixWorkload(d);
  const pager = createPager(spec);
  const r = runWorkload({
    workload: w,
    params: { size, seed: 1, vcpus: 1, memory: w.defaults.memory, thp: false },
    mode: '4-level',
    pcid: true,
    pager,
    layout: 'identity',
  });
  const stats = { ...collectStats(pager, r.port.cpus, r.ops, r.seconds), ...r.kernel.stats() };
  return { stats, digest: r.digest, cycles: modelCycles(stats, DEFAULT_COSTS).total };
}

/** Steady-state figures of a cell under a pager: the run minus its set-up. */
function steady(d: MixDials, spec: string) {
  const full = run(d, spec);
  const setup = run({ ...d, setupOnly: true }, spec);
  const less = (k: string): number =>
    ((full.stats[k] as number | undefined) ?? 0) - ((setup.stats[k] as number | undefined) ?? 0);
  return { digest: full.digest, cycles: full.cycles - setup.cycles, less };
}

const cells: Cell[] = [];
for (const footprintMiB of FOOTPRINTS) {
  for (const editsPerK of EDITS) {
    const d = { editsPerK, footprintMiB };
    const native = steady(d, 'native');
    const accesses = native.less('guest.user_accesses');
    const cell: Cell = {
      editsPerK,
      footprintMiB,
      tlbMissPerK: (1000 * native.less('tlb_misses')) / accesses,
      pteWritesPerK: (1000 * native.less('guest.pte_writes')) / accesses,
      overhead: {},
    };
    for (const spec of pagers) {
      const r = steady(d, spec);
      if (r.digest !== native.digest)
        throw new Error(`${w(d)} under ${spec}: the guest saw something else than natively`);
      cell.overhead[spec] = (100 * (r.cycles - native.cycles)) / native.cycles;
    }
    cells.push(cell);
    process.stderr.write('.');
  }
}
process.stderr.write('\n');

function w(d: MixDials): string {
  return `mix:edits=${d.editsPerK}:footprint=${d.footprintMiB}`;
}

const pct = (v: number): string => `${v >= 0 ? '+' : ''}${v.toFixed(1)}%`;
console.log(
  `Modelled overhead against native in the steady state (set-up subtracted), mix workload, size ${size} (${Math.round(size * 1e6).toLocaleString('en-US')} heap accesses), 4-level guest, PCID on, seed 1\n`,
);
console.log(
  `| heap | edits /1k | PTE writes /1k | TLB misses /1k | ${pagers.map((p) => `\`${p}\``).join(' | ')} | cheaper |`,
);
console.log(`|--:|--:|--:|--:|${pagers.map(() => '--:|').join('')}---|`);
for (const c of cells) {
  const low = Math.min(...pagers.map((p) => c.overhead[p] as number));
  const best = pagers.filter((p) => (c.overhead[p] as number) - low < 0.05);
  const cheaper = best.length === pagers.length ? 'all within 0.05%' : best.map((p) => `\`${p}\``).join(', ');
  console.log(
    `| ${c.footprintMiB} MiB | ${c.editsPerK} | ${c.pteWritesPerK.toFixed(1)} | ${c.tlbMissPerK.toFixed(1)} | ${pagers.map((p) => pct(c.overhead[p] as number)).join(' | ')} | ${cheaper} |`,
  );
}

// Crossover of the first two pagers: the edit rate at which the second becomes cheaper, by linear interpolation.
if (pagers.length >= 2) {
  const [a, b] = pagers as [string, string];
  console.log(`\nCrossover (\`${b}\` cheaper than \`${a}\` above this many table edits per 1,000 accesses):\n`);
  console.log('| heap | TLB misses /1k | crossover |');
  console.log('|--:|--:|--:|');
  for (const f of FOOTPRINTS) {
    const row = cells.filter((c) => c.footprintMiB === f);
    // > 0: b cheaper by more than the table's resolution
    const diff = row.map((c) =>
      (c.overhead[a] as number) - (c.overhead[b] as number) > 0.05
        ? (c.overhead[a] as number) - (c.overhead[b] as number)
        : Math.min(0, (c.overhead[a] as number) - (c.overhead[b] as number)),
    );
    let where = '';
    if (diff.every((x) => x > 0)) where = `\`${b}\` cheaper at every rate`;
    else if (diff.every((x) => x <= 0)) where = `\`${a}\` cheaper at every rate swept`;
    else {
      const i = diff.findIndex((x, j) => j > 0 && x > 0 && (diff[j - 1] as number) <= 0);
      if (i < 0) where = 'no single crossover';
      else {
        const [e0, e1] = [(row[i - 1] as Cell).editsPerK, (row[i] as Cell).editsPerK];
        const [d0, d1] = [diff[i - 1] as number, diff[i] as number];
        where = `≈ ${(e0 + ((e1 - e0) * -d0) / (d1 - d0)).toFixed(2)}`;
      }
    }
    console.log(`| ${f} MiB | ${(row[0] as Cell).tlbMissPerK.toFixed(1)} | ${where} |`);
  }
}

if (out !== '') {
  writeFileSync(join(out, 'crossover.json'), `${JSON.stringify({ size, pagers, cells }, null, 1)}\n`);
  const values = cells.flatMap((c) =>
    pagers.map((p) => ({ heap: `${c.footprintMiB} MiB`, edits: c.editsPerK, pager: p, overhead: c.overhead[p] })),
  );
  const svg = await renderSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'Shadow or nested: modelled overhead against native (mix workload)',
    data: { values },
    facet: {
      column: { field: 'heap', type: 'ordinal', sort: FOOTPRINTS.map((f) => `${f} MiB`), title: 'heap roamed' },
    },
    spec: {
      width: 150,
      height: 180,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'edits', type: 'quantitative', scale: { type: 'symlog' }, title: 'table edits / 1,000 accesses' },
        y: { field: 'overhead', type: 'quantitative', title: 'overhead vs native (%)' },
        color: { field: 'pager', type: 'nominal' },
      },
    },
  });
  writeFileSync(join(out, 'crossover.svg'), svg);
  console.log(`\nwrote ${join(out, 'crossover.json')} and ${join(out, 'crossover.svg')}`);
}
