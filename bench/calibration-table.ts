/**
 * The calibration table of docs/workloads.md: every built-in workload at
 * size 1 under the native pager, each figure next to its real counterpart's
 * (calibrate/real.json, written by `npm run calibrate` on this machine).
 *
 *   npm run -s build && node dist/bench/calibration-table.js
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runWorkload } from '../src/guest/kernel/run.js';
import type { Workload } from '../src/guest/kernel/workloads.js';
import { WORKLOADS } from '../src/guest/kernel/workloads.js';
import { programWorkload } from '../src/guest/program/replay.js';
import { openProgram } from '../src/io/program.js';
import { useNodeSha256 } from '../src/io/sha256.js';
import { calibrationRows, parseRealFigures } from '../src/metrics/calibration.js';
import { collectStats } from '../src/metrics/stats.js';
import { createPager } from '../src/pagers/registry.js';

useNodeSha256();
const file = fileURLToPath(new URL('../../calibrate/real.json', import.meta.url));
const real = parseRealFigures(JSON.parse(readFileSync(file, 'utf8')));
if (typeof real === 'string') throw new Error(`${file}: ${real}`);

const fmt = (v: number, percent: boolean): string =>
  percent ? `${v.toFixed(1)}%` : v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1);
console.log(
  `Real counterparts measured on ${String(real.machine.cpu)} (${String(real.machine.cpus)} CPUs, ${String(real.machine.kernel)})\n`,
);
console.log('| workload | figure | model | real | model / real |');
console.log('|---|---|--:|--:|--:|');
// The built-in workloads, then the bundled captures replayed (real counterpart: the captured program itself).
const fixtures = fileURLToPath(new URL('../../fixtures/programs/', import.meta.url));
const captures = readdirSync(fixtures)
  .filter((f) => f.endsWith('.ump'))
  .sort()
  .map((f) => programWorkload(openProgram(`${fixtures}${f}`), `program:${f}`));
const all: Workload[] = [...WORKLOADS, ...captures];
for (const w of all) {
  const pager = createPager('native');
  const r = runWorkload({
    workload: w,
    params: { size: 1, seed: 1, vcpus: w.defaults.vcpus, memory: w.defaults.memory, thp: false },
    mode: '4-level',
    pcid: true,
    pager,
    layout: 'identity',
  });
  const stats = { ...collectStats(pager, r.port.cpus, r.ops, r.seconds), ...r.kernel.stats() };
  for (const row of calibrationRows(w.name, stats, 1, real)) {
    const ratio = Number.isFinite(row.ratio) ? `${row.ratio.toFixed(2)}` : '∞';
    console.log(
      `| ${w.name} | ${row.figure} | ${fmt(row.model, row.percent)} | ${fmt(row.real, row.percent)} | ${row.within ? ratio : `**${ratio}**`} |`,
    );
  }
}
