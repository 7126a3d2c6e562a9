/**
 * The benchmark harness's measuring side (bench/run.ts drives it): a figure
 * runs in a child process of its own, times its rounds in CPU time (user +
 * system, process.cpuUsage) and wall time, and hands the samples back as
 * JSON; the parent takes medians and spreads. A process per figure means no
 * figure inherits another's JIT state, heap or garbage (the old single-process
 * bench let the run order decide which figure paid for megamorphic sites).
 */

/** One timed round: seconds of CPU (user + system) and of wall clock. */
export interface Sample {
  cpu: number;
  wall: number;
}

/** What one figure measured: `work` units per round (0: the figure is a time, not a rate). */
export interface Metric {
  id: string;
  name: string;
  /** What `work` counts: "ops", "walks", "lines", "faults", "bytes", … */
  unit: string;
  work: number;
  samples: Sample[];
  note?: string;
  /** The id of the JavaScript ceiling this figure is compared with (bench/ceilings.ts). */
  ceiling?: string;
  goal?: string;
}

export interface FigureResult {
  figure: string;
  metrics: Metric[];
  /** Peak resident set of the child process, MiB (process.resourceUsage().maxRSS). */
  maxRssMiB: number;
}

export interface RunConfig {
  rounds: number;
  warmup: number;
}

/** Time one call of `fn`. */
export function sample(fn: () => void): Sample {
  const c0 = process.cpuUsage();
  const w0 = process.hrtime.bigint();
  fn();
  const w = Number(process.hrtime.bigint() - w0) / 1e9;
  const c = process.cpuUsage(c0);
  return { cpu: (c.user + c.system) / 1e6, wall: w };
}

/** Warm-up rounds continue until they have used this much CPU time (s)… */
export const WARM_UP_CPU_SECONDS = 1;
/** …or this many rounds were made. */
export const WARM_UP_MAX_ROUNDS = 10;

/**
 * Untimed calls of `fn`: `warmup` of them, and with `warmup` > 0 more until
 * they have used WARM_UP_CPU_SECONDS of CPU (at most WARM_UP_MAX_ROUNDS): a
 * 0.1 s round needs several before V8's optimizing tier has settled (one
 * warm-up left a 0.1 s figure's first timed rounds 2× slower than the rest).
 */
export function warmUp(cfg: RunConfig, fn: () => void): void {
  if (cfg.warmup === 0) return;
  const c0 = process.cpuUsage();
  for (let i = 0; i < WARM_UP_MAX_ROUNDS; i++) {
    if (i >= cfg.warmup) {
      const c = process.cpuUsage(c0);
      if ((c.user + c.system) / 1e6 >= WARM_UP_CPU_SECONDS) return;
    }
    fn();
  }
}

/** Warm-up calls (warmUp), then `rounds` timed ones. */
export function rounds(cfg: RunConfig, fn: () => void): Sample[] {
  warmUp(cfg, fn);
  const out: Sample[] = [];
  for (let i = 0; i < cfg.rounds; i++) out.push(sample(fn));
  return out;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return Number.NaN;
  return n % 2 === 1 ? (s[n >> 1] as number) : ((s[n / 2 - 1] as number) + (s[n / 2] as number)) / 2;
}

/** Median, minimum and maximum. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

export function spread(xs: readonly number[]): Spread {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}
