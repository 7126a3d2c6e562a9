/**
 * Replay speed of the bundled program corpus (fixtures/programs, or the
 * captures named on the command line) per pager: captured accesses replayed
 * per second, wall and CPU time (docs/programs.md quotes the figures).
 *
 *   npm run build && node dist/bench/programs.js [FILE.ump …]
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runWorkload } from '../src/guest/kernel/run.js';
import { programWorkload, replayCounters } from '../src/guest/program/replay.js';
import { openProgram } from '../src/io/program.js';
import { useNodeSha256 } from '../src/io/sha256.js';
import { createPager } from '../src/pagers/registry.js';

useNodeSha256();

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = join(root, 'fixtures/programs');
const files =
  process.argv.length > 2
    ? process.argv.slice(2)
    : readdirSync(dir)
        .filter((n) => n.endsWith('.ump'))
        .sort()
        .map((n) => join(dir, n));
const PAGERS = (process.env.UMBRA_BENCH_PAGERS ?? 'native,shadow,nested').split(',');

interface Row {
  accesses: number;
  runs: number;
  ops: number;
  wall: number;
  cpu: number;
}

const total = new Map<string, Row>();
const pad = (s: string, n: number): string => s.padStart(n);
console.log(
  `${'capture'.padEnd(16)}${pad('pager', 8)}${pad('accesses', 12)}${pad('guest ops', 12)}${pad('wall s', 9)}${pad('cpu s', 9)}${pad('M acc/s', 9)}${pad('M ops/s', 9)}`,
);
for (const file of files) {
  const f = openProgram(file);
  const w = programWorkload(f, file);
  for (const spec of PAGERS) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const r = runWorkload({
      workload: w,
      params: { size: 1, seed: 1, vcpus: 2, memory: w.defaults.memory, thp: false },
      mode: '4-level',
      pcid: true,
      pager: createPager(spec),
      layout: 'identity',
    });
    const wall = (performance.now() - t0) / 1000;
    const cu = process.cpuUsage(c0);
    const cpu = (cu.user + cu.system) / 1e6;
    const c = replayCounters(r.kernel);
    const row: Row = { accesses: c?.accesses ?? 0, runs: c?.accessRuns ?? 0, ops: r.ops, wall, cpu };
    const t = total.get(spec) ?? { accesses: 0, runs: 0, ops: 0, wall: 0, cpu: 0 };
    for (const k of ['accesses', 'runs', 'ops', 'wall', 'cpu'] as const) t[k] += row[k];
    total.set(spec, t);
    const name = file.split('/').pop() as string;
    console.log(
      `${name.padEnd(16)}${pad(spec, 8)}${pad(row.accesses.toLocaleString('en-US'), 12)}${pad(row.ops.toLocaleString('en-US'), 12)}${pad(wall.toFixed(2), 9)}${pad(cpu.toFixed(2), 9)}${pad((row.accesses / cpu / 1e6).toFixed(2), 9)}${pad((row.ops / cpu / 1e6).toFixed(2), 9)}`,
    );
  }
}
for (const [spec, t] of total) {
  console.log(
    `${'all'.padEnd(16)}${pad(spec, 8)}${pad(t.accesses.toLocaleString('en-US'), 12)}${pad(t.ops.toLocaleString('en-US'), 12)}${pad(t.wall.toFixed(2), 9)}${pad(t.cpu.toFixed(2), 9)}${pad((t.accesses / t.cpu / 1e6).toFixed(2), 9)}${pad((t.ops / t.cpu / 1e6).toFixed(2), 9)}`,
  );
}
