/** `umbra exec`: run a scenario. */
import { writeFileSync, writeSync } from 'node:fs';
import { runScenario } from '../guest/scenario/run.js';
import type { Pager } from '../hypervisor/pager.js';
import type { LayoutKind } from '../machine/placement.js';
import { collectStats, formatStats, statsDocument } from '../metrics/stats.js';
import { createPager, PagerSpecError } from '../pagers/registry.js';
import { MAX_POOL_FRAMES } from '../pagers/shadow/options.js';
import { UsageError } from './errors.js';
import { readScenario } from './input.js';
import { parseIntOption, parseTlb } from './options.js';
import { traceWalks } from './walks.js';

export interface ExecOptions {
  pager: string;
  layout: LayoutKind;
  seed: string;
  tlb: string;
  stats?: boolean;
  statsJson?: string;
  p2mRo?: string[];
  check?: boolean;
  shadowPool?: string;
  traceWalks?: string | true;
}

/**
 * A pager from its spec: `native`, or `shadow` with optimizations switched
 * (`shadow:-oos:+prefetch=8`); `shadowPool` (--shadow-pool) sizes the pool
 * of every shadow pager unless its spec does.
 */
export function makePager(name: string, check = false, shadowPool?: string): Pager {
  const pool = shadowPool === undefined ? undefined : parseIntOption('--shadow-pool', shadowPool, 64, MAX_POOL_FRAMES);
  try {
    return createPager(name, { check, shadowPool: pool });
  } catch (e) {
    if (e instanceof PagerSpecError) throw new UsageError(`--pager: ${e.message}`);
    throw e;
  }
}

/** `--p2m-ro GFN[-GFN]` values (hex with 0x, or decimal) as inclusive ranges. */
export function parseRanges(values: readonly string[]): Array<[number, number]> {
  return values.map((v) => {
    const m = /^([^-]+)(?:-(.+))?$/.exec(v);
    const first = parseIntOption('--p2m-ro', m?.[1] ?? v, 0, 2 ** 40);
    const last = m?.[2] === undefined ? first : parseIntOption('--p2m-ro', m[2], 0, 2 ** 40);
    if (last < first) throw new UsageError(`--p2m-ro ${v}: the range ends before it starts`);
    return [first, last];
  });
}

/**
 * Write all of `c` to stdout before returning (the buffer is reused after):
 * a non-blocking pipe's EAGAIN waits and retries; a reader gone away
 * (`umbra exec … | head`) ends the run quietly.
 */
function writeStdout(c: Uint8Array): void {
  let done = 0;
  while (done < c.length) {
    try {
      done += writeSync(1, c, done, c.length - done);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EPIPE') process.exit(0);
      if (code !== 'EAGAIN') throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
}

export function execCommand(file: string, opts: ExecOptions): void {
  const seed = parseIntOption('--seed', opts.seed, 0, 2 ** 32 - 1);
  const tlb = parseTlb(opts.tlb);
  const readOnly = parseRanges(opts.p2mRo ?? []);
  const scenario = readScenario(file);
  const pager = makePager(opts.pager, opts.check, opts.shadowPool);
  const closeTrace = opts.traceWalks === undefined ? null : traceWalks(pager, opts.traceWalks);
  // Chunks of up to 1 MiB from one reused buffer (outReused), each written out before the writer goes on.
  const out = writeStdout;
  let r: ReturnType<typeof runScenario>;
  try {
    r = runScenario(scenario, {
      pager,
      layout: opts.layout,
      seed,
      tlb,
      out,
      outReused: true,
      readOnly,
      digest: opts.statsJson !== undefined,
    });
  } catch (e) {
    if (e instanceof RangeError && /machine memory/.test(e.message)) throw new UsageError(`${file}: ${e.message}`);
    throw e;
  } finally {
    closeTrace?.();
  }
  if (opts.stats || opts.statsJson) {
    const stats = collectStats(pager, r.cpus, r.ops, r.seconds);
    if (opts.stats) process.stderr.write(formatStats(stats));
    if (opts.statsJson) {
      const run = {
        scenario: file,
        machine: scenario.machine,
        layout: opts.layout,
        seed,
        tlb: opts.tlb,
        p2mRo: readOnly,
      };
      writeFileSync(opts.statsJson, `${JSON.stringify(statsDocument(stats, run, r.digest), null, 2)}\n`);
    }
  }
}
