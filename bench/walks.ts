/**
 * Walks per second with and without paging-structure caches (node
 * dist/bench/walks.js; issue 11). On the bundled real x86-64 image, at the
 * VAs QEMU's own `info tlb` lists as mapped:
 *
 *   native      one-stage 4-level walks of the image's tables, caches off
 *               and on (UpperCaches filled after each walk, as the CPU does)
 *   nested      2-D walks of the image placed behind 4-level EPT (identity
 *               placement, 2 MiB stage-2 pages where the image allows; and
 *               4 KiB pages only), caches off and on, final translation
 *               included
 *
 * in two orders: shuffled (successive walks touch unrelated tables: the
 * caches mostly miss, so this shows what a miss costs) and in address order
 * (neighbours share upper entries: mostly hits). Each figure is the median
 * over rounds of walks per second of CPU time (user + system), with wall
 * time beside it, and the memory references per walk.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { READ } from '../src/arch/x86/bits.js';
import { formatFor, MODE_LONG4 } from '../src/arch/x86/modes.js';
import { DEFAULT_WALK_CACHES, WalkCaches } from '../src/arch/x86/psc.js';
import { WALK_OK, Walker, WalkResult } from '../src/arch/x86/walker.js';
import { rng } from '../src/guest/rng.js';
import { openImage } from '../src/import/image.js';
import { unxzFile } from '../src/import/xz.js';
import { NestedImage } from '../src/inspect/walk2d.js';
import { DEFAULT_NESTED } from '../src/pagers/nested/options.js';
import { ONE_STAGE_DEFAULT } from '../src/pagers/pwc.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const ROUNDS = Number(process.env.UMBRA_BENCH_ROUNDS ?? 5);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** Median walks/s over the rounds after a warm-up: CPU time and wall time. */
function rate(n: number, fn: () => void): { cpu: number; wall: number } {
  fn();
  const cpu: number[] = [];
  const wall: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const w0 = process.hrtime.bigint();
    const t0 = process.cpuUsage();
    fn();
    const t = process.cpuUsage(t0);
    const w = Number(process.hrtime.bigint() - w0) / 1e9;
    cpu.push(n / ((t.user + t.system) / 1e6));
    wall.push(n / w);
  }
  return { cpu: median(cpu), wall: median(wall) };
}

const dir = join(root, 'fixtures/x86_64-4level-2');
const image = await openImage(join(dir, 'dump.elf.xz'));
const vcpu = image.cpus[0];
if (vcpu === undefined) throw new Error('fixture has no vCPU');
const tlbText = (await unxzFile(join(dir, 'tlb-cpu0.txt.xz'))).toString('utf8');
const sorted: Array<[number, number]> = [];
for (const line of tlbText.split('\n')) {
  if (line.length < 17) continue;
  const va = BigInt(`0x${line.slice(0, 16)}`);
  sorted.push([Number(va >> 32n) >>> 0, Number(va & 0xffffffffn) >>> 0]);
}
const shuffled = [...sorted];
const r = rng(42);
for (let i = shuffled.length - 1; i > 0; i--) {
  const j = Math.floor(r() * (i + 1));
  [shuffled[i], shuffled[j]] = [shuffled[j] as [number, number], shuffled[i] as [number, number]];
}
const fmt4 = formatFor(MODE_LONG4, 40, true, false);
const rootPfn = Number(vcpu.cr3 >> 12n) & 0xfffffff;
const rootView = { cr3: vcpu.cr3, pfn: rootPfn, pdpte: null };

const rows: string[][] = [['walks', 'order', 'caches', 'M walks/s (CPU)', 'M walks/s (wall)', 'refs/walk']];
const M = (x: number): string => (x / 1e6).toFixed(2);

function native(order: string, vas: Array<[number, number]>, cached: boolean): void {
  const hi = new Uint32Array(vas.map((v) => v[0]));
  const lo = new Uint32Array(vas.map((v) => v[1]));
  const w = new Walker();
  const res = new WalkResult();
  const caches = cached ? new WalkCaches(ONE_STAGE_DEFAULT) : null;
  const upper = caches?.upper ?? null;
  const N = 1_000_000;
  let ok = 0;
  const run = (): void => {
    for (let i = 0, k = 0; i < N; i++, k++) {
      if (k === hi.length) k = 0;
      if (w.walk(image.memory, fmt4, rootPfn, null, hi[k] as number, lo[k] as number, res, null, caches) === WALK_OK) {
        ok++;
        if (upper !== null) w.fillCaches(res, upper, 0);
      }
    }
  };
  const reads0 = w.entryReads;
  const walks0 = w.walks;
  const t = rate(N, run);
  if (ok === 0) throw new Error('no walk succeeded: the benchmark is broken');
  const refs = (w.entryReads - reads0) / (w.walks - walks0);
  rows.push(['native 4-level', order, cached ? 'on' : 'off', M(t.cpu), M(t.wall), refs.toFixed(2)]);
}

function nested(order: string, vas: Array<[number, number]>, cached: boolean, large: boolean): void {
  const sw = { ...DEFAULT_NESTED, large, pwc: cached ? DEFAULT_WALK_CACHES : null };
  const img = new NestedImage(image, sw, 'identity', 1);
  const res = new WalkResult();
  const caches = cached ? new WalkCaches(DEFAULT_WALK_CACHES) : null;
  const N = 200_000;
  let ok = 0;
  const run = (): void => {
    for (let i = 0, k = 0; i < N; i++, k++) {
      if (k === vas.length) k = 0;
      const v = vas[k] as [number, number];
      // Supervisor reads with no SMAP/SMEP control bits: every mapped VA translates.
      if (img.walk(fmt4, rootView, v[0], v[1], READ, 0, 0, res, caches, 0) === null) ok++;
    }
  };
  const w = img.walker;
  const t = rate(N, run);
  if (ok === 0) throw new Error('no 2-D walk succeeded: the benchmark is broken');
  // References per translation, over one pass after the timed rounds (stage 2 long filled in).
  const reads0 = w.entryReads;
  run();
  const refs = (w.entryReads - reads0) / N;
  const name = `nested 4-on-4 EPT, ${large ? '2 MiB' : '4 KiB'} stage 2`;
  rows.push([name, order, cached ? 'on' : 'off', M(t.cpu), M(t.wall), refs.toFixed(2)]);
}

for (const [order, vas] of [
  ['shuffled', shuffled],
  ['in order', sorted],
] as const) {
  for (const cached of [false, true]) native(order, vas, cached);
}
for (const [order, vas] of [
  ['shuffled', shuffled],
  ['in order', sorted],
] as const) {
  for (const large of [true, false]) for (const cached of [false, true]) nested(order, vas, cached, large);
}
image.close();

const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] as string).length))) ?? [];
for (const row of rows) {
  console.log(row.map((c, i) => (i < 3 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  '));
}
console.log(`(${sorted.length} mapped VAs of fixtures/x86_64-4level-2; median of ${ROUNDS} rounds)`);
