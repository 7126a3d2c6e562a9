/**
 * Umbra benchmarks (`npm run bench`). Every figure (bench/figures.ts) runs in
 * a child process of its own, so no figure inherits another's JIT state,
 * heap or garbage; a child does `--warmup` untimed rounds, then `--rounds`
 * timed ones, each timed in CPU time (user + system) and wall time. The
 * table gives the median rate per second of CPU time with its spread
 * (min–max over the rounds), the median wall-time rate, and the figure as a
 * fraction of its JavaScript ceiling (bench/ceilings.ts, measured in the same
 * run). Wall time on the shared machines swings 2–5× with load; CPU time far
 * less, so goals are judged on CPU time.
 *
 *   npm run bench                         every figure but the heavy ones
 *   npm run bench -- --all                also the minute-long ones (compile size 1, forkexec 10,000)
 *   npm run bench -- --only walks,ceiling-walk --rounds 9
 *   npm run bench -- --json [FILE]        also the results as JSON (to FILE, or stdout with the table on stderr)
 *   npm run bench -- --list               the figure ids
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useNodeSha256 } from '../src/io/sha256.js';
import { type Figure, figures, RATIOS } from './figures.js';
import { type FigureResult, type Metric, type RunConfig, type Spread, spread } from './harness.js';

interface Args extends RunConfig {
  only: string[] | null;
  all: boolean;
  json: string | null | undefined;
  list: boolean;
  child: string | null;
  result: string | null;
  timeout: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    rounds: Number(process.env.UMBRA_BENCH_ROUNDS ?? 5),
    warmup: 1,
    only: null,
    all: false,
    json: undefined,
    list: false,
    child: null,
    result: null,
    timeout: 900,
  };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${x} needs a value`);
      return v;
    };
    if (x === '--rounds') a.rounds = Number(next());
    else if (x === '--warmup') a.warmup = Number(next());
    else if (x === '--only') a.only = next().split(',');
    else if (x === '--all') a.all = true;
    else if (x === '--list') a.list = true;
    else if (x === '--timeout') a.timeout = Number(next());
    else if (x === '--child') a.child = next();
    else if (x === '--result') a.result = next();
    else if (x === '--json') {
      const v = argv[i + 1];
      a.json = null;
      if (v !== undefined && !v.startsWith('--')) {
        a.json = v;
        i++;
      }
    } else throw new Error(`unknown argument ${x} (see bench/run.ts)`);
  }
  if (!(a.rounds >= 1) || !(a.warmup >= 0)) throw new Error('--rounds must be at least 1, --warmup at least 0');
  return a;
}

/** Child: run one figure, write its result as JSON to `result`. */
async function child(fig: Figure, cfg: RunConfig, result: string): Promise<void> {
  useNodeSha256();
  const metrics = await fig.run(cfg);
  const out: FigureResult = { figure: fig.id, metrics, maxRssMiB: process.resourceUsage().maxRSS / 1024 };
  writeFileSync(result, JSON.stringify(out));
}

interface Row {
  metric: Metric;
  maxRssMiB: number;
  /** Work per second of CPU time, per round. */
  cpuRate: Spread;
  wallRate: Spread;
  cpuSeconds: Spread;
  wallSeconds: Spread;
  ofCeiling: number | null;
}

function spawnFigure(fig: Figure, a: Args): FigureResult | string {
  const self = fileURLToPath(import.meta.url);
  const result = join(tmpdir(), `umbra-bench-${process.pid}-${fig.id}.json`);
  const r = spawnSync(
    process.execPath,
    [self, '--child', fig.id, '--rounds', String(a.rounds), '--warmup', String(a.warmup), '--result', result],
    // stdout to /dev/null: the end-to-end figure writes its output there, as `umbra exec > /dev/null`.
    { stdio: ['ignore', 'ignore', 'pipe'], timeout: a.timeout * 1000, maxBuffer: 1 << 24 },
  );
  try {
    if (r.status !== 0) {
      const err = r.stderr.toString().split('\n');
      const why = err.find((l) => /^\w*Error\b/.test(l)) ?? err.filter((l) => l.trim() !== '').pop() ?? '';
      return `failed (${r.signal ?? `status ${r.status}`}): ${why.trim()}`;
    }
    return JSON.parse(readFileSync(result, 'utf8')) as FigureResult;
  } finally {
    rmSync(result, { force: true });
  }
}

const rateText = (x: number, unit: string): string =>
  unit === 's' ? `${x.toFixed(2)} s` : x >= 1e6 ? `${(x / 1e6).toFixed(2)} M/s` : `${(x / 1e3).toFixed(1)} k/s`;

function spreadText(s: Spread, unit: string): string {
  if (unit === 's') return `${s.median.toFixed(2)} s (${s.min.toFixed(2)}–${s.max.toFixed(2)})`;
  const d = s.median >= 1e6 ? 1e6 : 1e3;
  const u = d === 1e6 ? 'M/s' : 'k/s';
  const p = d === 1e6 ? 2 : 1;
  return `${(s.median / d).toFixed(p)} ${u} (${(s.min / d).toFixed(p)}–${(s.max / d).toFixed(p)})`;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const all = figures();
  if (a.child !== null) {
    const fig = all.find((f) => f.id === a.child);
    if (fig === undefined || a.result === null) throw new Error(`no figure ${a.child}`);
    await child(fig, a, a.result);
    return;
  }
  if (a.list) {
    for (const f of all) console.log(`${f.id}${f.heavy ? ' (heavy: --all)' : ''}`);
    return;
  }
  const chosen = all.filter((f) => (a.only === null ? a.all || !f.heavy : a.only.includes(f.id)));
  if (a.only !== null) {
    for (const id of a.only) if (!all.some((f) => f.id === id)) throw new Error(`no figure ${id} (--list)`);
  }
  const log = a.json === null ? process.stderr : process.stdout;
  const rows: Row[] = [];
  const failures: Array<[string, string]> = [];
  for (const fig of chosen) {
    process.stderr.write(`  ${fig.id} …\r`);
    const r = spawnFigure(fig, a);
    process.stderr.write(`\x1b[K`);
    if (typeof r === 'string') {
      failures.push([fig.id, r]);
      continue;
    }
    for (const m of r.metrics) {
      const per = (k: 'cpu' | 'wall'): number[] => m.samples.map((s) => (m.work === 0 ? s[k] : m.work / s[k]));
      rows.push({
        metric: m,
        maxRssMiB: r.maxRssMiB,
        cpuRate: spread(per('cpu')),
        wallRate: spread(per('wall')),
        cpuSeconds: spread(m.samples.map((s) => s.cpu)),
        wallSeconds: spread(m.samples.map((s) => s.wall)),
        ofCeiling: null,
      });
    }
  }
  const byId = new Map(rows.map((r) => [r.metric.id, r]));
  for (const r of rows) {
    const c = r.metric.ceiling === undefined ? undefined : byId.get(r.metric.ceiling);
    if (c !== undefined) r.ofCeiling = r.cpuRate.median / c.cpuRate.median;
  }
  const ratios = RATIOS.flatMap(([name, fast, slow, goal]) => {
    const f = byId.get(fast);
    const s = byId.get(slow);
    return f === undefined || s === undefined ? [] : [{ name, ratio: f.cpuRate.median / s.cpuRate.median, goal }];
  });

  log.write(
    `Umbra benchmarks: node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}; each figure in its own process, ` +
      `${a.warmup} warm-up + ${a.rounds} timed rounds; rates per second of CPU time (user + system), median (min–max)\n\n`,
  );
  const head = ['figure', 'CPU time: median (min–max)', 'wall: median', 'of ceiling', 'peak RSS', 'goal / note'];
  const table = rows.map((r) => [
    r.metric.name,
    spreadText(r.metric.work === 0 ? r.cpuSeconds : r.cpuRate, r.metric.unit),
    rateText(r.metric.work === 0 ? r.wallSeconds.median : r.wallRate.median, r.metric.unit),
    r.ofCeiling === null ? '' : r.ofCeiling.toFixed(2),
    `${r.maxRssMiB.toFixed(0)} MiB`,
    [r.metric.goal === undefined ? '' : `goal ${r.metric.goal}`, r.metric.note ?? '']
      .filter((x) => x !== '')
      .join('; '),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((t) => (t[i] as string).length)));
  const line = (cells: string[]): string =>
    `${cells
      .map((c, i) =>
        i === 0 || i === cells.length - 1 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number),
      )
      .join('  ')
      .trimEnd()}\n`;
  log.write(line(head));
  for (const t of table) log.write(line(t));
  if (ratios.length > 0) {
    log.write('\n');
    for (const r of ratios) log.write(`${r.name}: ${r.ratio.toFixed(2)}×${r.goal === '' ? '' : ` (goal ${r.goal})`}\n`);
  }
  for (const [id, why] of failures) log.write(`\n${id}: ${why}\n`);

  if (a.json !== undefined) {
    const doc = {
      node: process.version,
      date: new Date().toISOString(),
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? null,
      warmup: a.warmup,
      rounds: a.rounds,
      figures: rows.map((r) => ({
        id: r.metric.id,
        name: r.metric.name,
        unit: r.metric.unit,
        workPerRound: r.metric.work,
        cpuRate: r.metric.work === 0 ? null : r.cpuRate,
        wallRate: r.metric.work === 0 ? null : r.wallRate,
        cpuSeconds: r.cpuSeconds,
        wallSeconds: r.wallSeconds,
        samples: r.metric.samples,
        ceiling: r.metric.ceiling ?? null,
        fractionOfCeiling: r.ofCeiling,
        maxRssMiB: r.maxRssMiB,
        goal: r.metric.goal ?? null,
        note: r.metric.note ?? null,
      })),
      ratios,
      failures: failures.map(([id, why]) => ({ id, why })),
    };
    const text = `${JSON.stringify(doc, null, 2)}\n`;
    if (a.json === null) process.stdout.write(text);
    else writeFileSync(a.json, text);
  }
  if (failures.length > 0) process.exitCode = 1;
}

try {
  await main();
} catch (e) {
  // A child's failure is its own report; a bad argument is one line.
  const err = e as Error;
  process.stderr.write(`bench: ${process.argv.includes('--child') ? err.stack : err.message}\n`);
  process.exitCode = 2;
}
