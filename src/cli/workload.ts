/**
 * `umbra workloads`, `umbra run`, `umbra compare` and `umbra replay`: the
 * guest kernel model running named workloads, measured per pager.
 *
 * stdout carries only what is deterministic (the same run prints the same
 * bytes, and a replay prints what the live run printed); timings and the
 * progress bar go to stderr.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { Option } from 'commander';
import { OutOfMemory } from '../guest/kernel/frames.js';
import type { Kernel } from '../guest/kernel/kernel.js';
import { KERNEL_MODES, type KernelMode, layoutFor } from '../guest/kernel/layout.js';
import { runWorkload, startWorkload, type WorkloadRunOptions } from '../guest/kernel/run.js';
import type { PageCacheState } from '../guest/kernel/state.js';
import { WORKLOADS, type Workload, type WorkloadParams, workload } from '../guest/kernel/workloads.js';
import { ProgramError } from '../guest/program/format.js';
import { programTop, programWorkload, replayCounters } from '../guest/program/replay.js';
import { TraceError } from '../guest/trace/format.js';
import { replayTrace } from '../guest/trace/replay.js';
import { TraceWriter } from '../guest/trace/writer.js';
import { type MigratingGuest, migrate } from '../hypervisor/migrate.js';
import type { Pager } from '../hypervisor/pager.js';
import { openProgram } from '../io/program.js';
import { openTrace, traceFileOutput } from '../io/trace.js';
import type { LayoutKind } from '../machine/placement.js';
import {
  calibration,
  calibrationLines,
  calibrationRows,
  parseRealFigures,
  type RealFigures,
} from '../metrics/calibration.js';
import { compareRows, renderCsv, renderJson, renderText } from '../metrics/compare.js';
import { type CostModel, DEFAULT_COSTS, modelCycles } from '../metrics/costs.js';
import { plotSvg } from '../metrics/plot.js';
import { collectStats, formatStats, pagerSummary, type Stats, statsDocument } from '../metrics/stats.js';
import { UsageError, userErrors } from './errors.js';
import { makePager } from './exec.js';
import { loadCosts } from './input.js';
import { parseIntOption, parseTlb } from './options.js';
import { startProgress } from './progress.js';

interface GuestOptions {
  workload?: string;
  program?: string;
  lazyTlb?: boolean;
  faultAround?: boolean;
  readahead?: boolean;
  pageCache?: string;
  size: string;
  seed: string;
  vcpus?: string;
  memory?: string;
  mode: string;
  pcid: boolean;
  thp?: boolean;
  layout: LayoutKind;
  tlb: string;
  check?: boolean;
  shadowPool?: string;
  verify?: boolean;
  costs?: string;
  balloon?: string;
}

interface RunOptions extends GuestOptions {
  pager: string;
  record?: string;
  output?: string;
  stats?: boolean;
  statsJson?: string;
}

interface CompareOptions extends GuestOptions {
  pagers: string;
  json?: boolean;
  csv?: boolean;
  plot?: string;
}

/** What a run is: the facts a trace records as metadata and a report prints. */
interface RunSpec {
  workload: Workload;
  params: WorkloadParams;
  mode: KernelMode;
  pcid: boolean;
  lazyTlb: boolean;
  faultAround: boolean;
  readahead: boolean;
  /** The page cache at boot; the workload's own choice when not given. */
  pageCache: PageCacheState;
}

export function registerWorkloadCommands(program: Command): void {
  program
    .command('workloads')
    .description('list the built-in workloads, what they imitate and their knobs')
    .action(listCommand);

  guestOptions(
    program
      .command('run')
      .description('boot the guest kernel, run a workload under one pager, and report what it cost')
      .option('--pager <spec>', 'pager: native, shadow, or shadow with switches (shadow:-oos)', 'native')
      .option('--record <file>', 'record the guest operations to a trace file')
      .option('--output <file>', 'write the guest-visible output (scenario-format JSON Lines) to a file')
      .option('--stats', 'print every counter to stderr')
      .option('--stats-json <file>', 'write every counter as JSON'),
  )
    .option(BALLOON_FLAG, BALLOON_HELP)
    .action(runCommand);

  guestOptions(
    program
      .command('compare')
      .description('run a workload under several pagers and show what each cost, side by side')
      .option('--pagers <list>', 'comma-separated pagers, the first being the baseline', 'native,shadow')
      .option('--json', 'print the comparison as JSON')
      .option('--csv', 'print the comparison as CSV')
      .option('--plot <file.svg>', 'also draw the main figures as an SVG chart'),
  )
    .option(BALLOON_FLAG, BALLOON_HELP)
    .action(compareCommand);

  guestOptions(
    program
      .command('migrate')
      .description('live-migrate a guest running a workload (pre-copy with log-dirty) and verify the copy')
      .option(
        '--pager <spec>',
        'shadow or nested pager spec (shadow:-logdirty: stop-and-copy only; nested:…:logdirty=wp|pml)',
        'shadow',
      )
      .option('--warmup <ops>', 'guest operations before migration starts', '1000000')
      .option('--bandwidth <mbit>', 'link speed in Mbit/s (sets how far the guest runs per page sent)', '1000')
      .option('--max-rounds <n>', 'pre-copy rounds at most (Xen: 30)', '30')
      .option('--stop-pages <n>', 'stop and copy when a round dirtied fewer pages (Xen: 50)', '50')
      .option('--json', 'print the result as JSON')
      .option('--stats', "print every counter to stderr after the migration (the pager's log-dirty work included)"),
  ).action(migrateCommand);

  const replay = program
    .command('replay')
    .description('replay a recorded trace under a pager; prints what the live run printed')
    .argument('<trace>', 'trace file written by run --record')
    .option('--pager <spec>', 'pager: native, shadow, or shadow with switches (shadow:-oos)', 'native');
  hostOptions(replay)
    .option('--output <file>', 'write the guest-visible output to a file')
    .option('--stats', 'print every counter to stderr')
    .option('--stats-json <file>', 'write every counter as JSON')
    .action(replayCommand);
}

const BALLOON_FLAG = '--balloon <size>';
const BALLOON_HELP =
  'a balloon driver gives back up to SIZE of guest RAM (25%, 128M) and takes it back, four times over the run';

function guestOptions(c: Command): Command {
  c.option('--workload <name>', `workload: ${WORKLOADS.map((w) => w.name).join(', ')}`)
    .option('--program <file>', 'a captured program tree instead (umbra capture; docs/programs.md)')
    .option('--size <x>', 'amount of work, relative to the workload default (1)', '1')
    .option('--seed <n>', 'seed of every random choice', '1')
    .option('--vcpus <n>', 'guest vCPUs (default: the workload default)')
    .option('--memory <bytes>', 'guest RAM, e.g. 512M, 4G (default: the workload default)')
    .addOption(new Option('--mode <mode>', 'guest paging mode').choices([...KERNEL_MODES]).default('4-level'))
    .option('--no-pcid', 'do not tag address spaces with PCIDs')
    .option('--thp', 'transparent huge pages for large anonymous areas')
    .option('--verify', "check every user read against the guest kernel's record of what was written")
    .option('--no-lazy-tlb', 'IPI idle vCPUs for every shootdown (no lazy TLB mode)')
    .option('--no-fault-around', 'map only the faulting page of a file mapping (fault_around_bytes = 4096)')
    .option('--no-readahead', 'read only the missing page of a file into the page cache (no mmap read-around)')
    .addOption(
      new Option(
        '--page-cache <state>',
        'the page cache at boot: cold (empty) or warm (every file page cached); default: warm for --program, cold for built-in workloads',
      ).choices(['cold', 'warm']),
    );
  return hostOptions(c);
}

/** Options of the host side: machine placement, TLB, the checker, the cost model. */
function hostOptions(c: Command): Command {
  return c
    .addOption(
      new Option('--layout <kind>', 'where guest frames sit in machine memory')
        .choices(['identity', 'scatter'])
        .default('identity'),
    )
    .option('--tlb <geometry>', 'TLB geometry: default, off, tiny, or 4k=SETSxWAYS,...', 'default')
    .option('--check', 'run the shadow isolation checker after every exit (slow)')
    .option(
      '--shadow-pool <frames>',
      "shadow pool size in frames (default: Xen's rule, 1 MiB per vCPU + 8 KiB per MiB of RAM)",
    )
    .option('--costs <file.json>', 'unit costs for the modelled cycles (docs/costs.md)');
}

function listCommand(): void {
  const out: string[] = [];
  for (const w of WORKLOADS) {
    out.push(`${w.name.padEnd(10)} ${w.description}`);
    out.push(`${''.padEnd(10)} imitates: ${w.imitates}`);
    out.push(
      `${''.padEnd(10)} size 1 = ${w.sizeMeans}; defaults: ${w.defaults.vcpus} vCPU(s), ${w.defaults.memory / 2 ** 20} MiB`,
    );
  }
  out.push('');
  out.push('knobs (run, compare): --size X  --seed N  --vcpus N  --memory BYTES  --mode 4-level|5-level|pae|32-bit');
  out.push('                      --no-pcid  --thp  --layout identity|scatter  --tlb GEOMETRY  --costs FILE.json');
  out.push('                      --balloon SIZE (25% of RAM or bytes, 128M: inflate and deflate while it runs)');
  process.stdout.write(`${out.join('\n')}\n`);
}

/** "512M", "4G", "1T", "0x…" or a decimal byte count. */
export function parseBytes(flag: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMGT])i?B?$/i.exec(v);
  const n = m
    ? Number(m[1]) * 2 ** (10 * ('KMGT'.indexOf((m[2] as string).toUpperCase()) + 1))
    : parseIntOption(flag, v, 0, 2 ** 40);
  if (!Number.isInteger(n) || n <= 0 || n % 4096 !== 0 || n > 2 ** 40) {
    throw new UsageError(`${flag} ${v}: must be a multiple of 4 KiB, at most 1 TiB`);
  }
  return n;
}

/**
 * --balloon: a percentage of guest RAM ("25%") or a byte count as --memory
 * takes it ("128M"), rounded down to whole frames; above 0, below the RAM.
 */
export function parseBalloon(v: string, memory: number): number {
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(v);
  let bytes: number;
  if (pct) {
    const p = Number(pct[1]);
    if (!(p > 0 && p < 100)) throw new UsageError(`--balloon ${v}: a percentage must be above 0 and below 100`);
    bytes = Math.floor((memory * p) / 100 / 4096) * 4096;
    if (bytes === 0) throw new UsageError(`--balloon ${v}: less than one 4 KiB frame of the guest's RAM`);
  } else {
    if (!/^(?:\d+(?:\.\d+)?[KMGT]i?B?|0x[0-9a-f]+|\d+)$/i.test(v)) {
      throw new UsageError(`--balloon ${v}: give a percentage of RAM (25%) or a size (128M)`);
    }
    bytes = parseBytes('--balloon', v);
  }
  if (bytes >= memory) {
    throw new UsageError(`--balloon ${v}: must be less than the guest's RAM (${memory / 2 ** 20} MiB)`);
  }
  return bytes;
}

/** The workload of --workload or --program (exactly one of them). */
function workloadOf(o: GuestOptions): Workload {
  if ((o.workload === undefined) === (o.program === undefined))
    throw new UsageError('give --workload NAME or --program FILE (one of them)');
  if (o.program !== undefined) {
    const file = o.program;
    const f = userErrors(file, () => openProgram(file), [ProgramError]);
    const mode = o.mode as KernelMode;
    const top = programTop(f);
    const userTop = layoutFor(mode).userTop;
    if (top > userTop)
      throw new UsageError(
        `--program ${file}: uses addresses up to 0x${(top - 1).toString(16)}, above the 0x${userTop.toString(16)} a ${mode} guest gives user space (use --mode 4-level)`,
      );
    if (o.size !== '1') throw new UsageError('--size: a captured program runs as captured (--size 1)');
    return programWorkload(f, `program:${basename(file)}`);
  }
  const w = workload(o.workload as string);
  if (w === undefined) {
    throw new UsageError(`unknown workload "${o.workload}" (try: ${WORKLOADS.map((x) => x.name).join(', ')})`);
  }
  return w;
}

function specOf(o: GuestOptions): RunSpec {
  const w = workloadOf(o);
  // Decimal only: Number() would also take "0x10", "1e3" and " 2".
  const size = /^(?:\d+(?:\.\d*)?|\.\d+)$/.test(o.size) ? Number(o.size) : Number.NaN;
  if (!Number.isFinite(size) || size <= 0 || size > 10000)
    throw new UsageError(`--size ${o.size}: must be a decimal number above 0 and at most 10000 (e.g. 0.25)`);
  const mode = o.mode as KernelMode;
  const limit = layoutFor(mode).directLimit;
  // 32-bit guests keep to low memory: the default shrinks to fit it.
  const memory = o.memory === undefined ? Math.min(w.defaults.memory, limit) : parseBytes('--memory', o.memory);
  if (memory > limit)
    throw new UsageError(`--memory: a ${mode} guest models low memory only, at most ${limit / 2 ** 20} MiB`);
  if (memory < 64 * 2 ** 20) throw new UsageError('--memory: the guest kernel needs at least 64 MiB');
  if (o.thp && mode === '32-bit') {
    throw new UsageError(
      '--thp: 32-bit 2-level guests have no transparent huge pages (Linux has them on x86-64 and PAE only)',
    );
  }
  return {
    workload: w,
    mode,
    pcid: o.pcid,
    lazyTlb: o.lazyTlb !== false,
    faultAround: o.faultAround !== false,
    readahead: o.readahead !== false,
    pageCache: (o.pageCache as PageCacheState | undefined) ?? w.pageCache ?? 'cold',
    params: {
      size,
      seed: parseIntOption('--seed', o.seed, 0, 2 ** 32 - 1),
      vcpus: o.vcpus === undefined ? w.defaults.vcpus : parseIntOption('--vcpus', o.vcpus, 1, 64),
      memory,
      thp: o.thp === true,
      ...(o.balloon === undefined ? {} : { balloon: parseBalloon(o.balloon, memory) }),
    },
  };
}

function metaOf(s: RunSpec): Record<string, unknown> {
  return {
    workload: s.workload.name,
    size: s.params.size,
    seed: s.params.seed,
    vcpus: s.params.vcpus,
    memory: s.params.memory,
    mode: s.mode,
    pcid: s.pcid,
    thp: s.params.thp,
    // Only when asked for: traces and reports of runs without a balloon stay as they were.
    ...(s.params.balloon === undefined ? {} : { balloon: s.params.balloon }),
    ...(s.lazyTlb ? {} : { lazyTlb: false }),
    ...(s.faultAround ? {} : { faultAround: false }),
    ...(s.readahead ? {} : { readahead: false }),
    ...(s.pageCache === (s.workload.pageCache ?? 'cold') ? {} : { pageCache: s.pageCache }),
  };
}

/**
 * Failures a run can meet that are the user's to fix, as one line (exit 2):
 * the guest kernel running out of memory (--memory), a bad block of a
 * program trace (found when the replay reaches it).
 */
function outOfMemory(e: unknown, spec: RunSpec): unknown {
  if (e instanceof ProgramError) return new UsageError(e.message);
  if (!(e instanceof OutOfMemory)) return e;
  return new UsageError(
    `${spec.workload.name}: the guest ran out of memory (${e.message}) in ${mibOf(spec.params.memory)} of RAM: give it more with --memory`,
  );
}

/** A program replay's own counters, as "guest.program.*" stats (none for built-in workloads). */
function programStats(k: Kernel): Record<string, number> {
  const c = replayCounters(k);
  if (c === undefined) return {};
  return {
    'guest.program.events': c.events,
    'guest.program.access_runs': c.accessRuns,
    'guest.program.accesses': c.accesses,
    'guest.program.syscalls': c.syscalls,
    'guest.program.processes': c.processes,
    'guest.program.threads': c.threads,
    'guest.program.killed': c.killed,
    'guest.program.madvise_ignored': c.madviseIgnored,
    'guest.program.shared_mappings': c.sharedMappings,
  };
}

function costsOf(o: { costs?: string }): CostModel {
  return o.costs === undefined ? { ...DEFAULT_COSTS } : loadCosts(o.costs);
}

/** A writer of the guest-visible output to a file, in large chunks. */
function fileSink(path: string | undefined): { out?: (c: Uint8Array) => void; close(): void } {
  if (path === undefined) return { close() {} };
  const chunks: Uint8Array[] = [];
  let size = 0;
  writeFileSync(path, '');
  const drain = (): void => {
    writeFileSync(path, Buffer.concat(chunks), { flag: 'a' });
    chunks.length = 0;
    size = 0;
  };
  return {
    out: (c) => {
      chunks.push(c);
      size += c.length;
      if (size > 1 << 22) drain();
    },
    close: drain,
  };
}

/** The guest and host a workload runs on, from the command's options. */
function machineOf(spec: RunSpec, o: GuestOptions, pager: Pager): WorkloadRunOptions {
  return {
    workload: spec.workload,
    params: spec.params,
    mode: spec.mode,
    pcid: spec.pcid,
    lazyTlb: spec.lazyTlb,
    faultAround: spec.faultAround ? 16 : 1,
    readahead: spec.readahead ? 32 : 1,
    pageCache: spec.pageCache,
    verify: o.verify,
    pager,
    layout: o.layout,
    tlb: parseTlb(o.tlb),
  };
}

interface Measured {
  stats: Stats;
  digest: string;
  seconds: number;
}

/** Run one workload under one pager. */
function measure(
  spec: RunSpec,
  o: GuestOptions,
  pagerName: string,
  extra: { record?: string; output?: string },
): Measured {
  const pager = makePager(pagerName, o.check, o.shadowPool);
  const record = extra.record;
  const recorder =
    record === undefined
      ? undefined
      : userErrors(
          record,
          () =>
            new TraceWriter(
              traceFileOutput(record),
              { vcpus: spec.params.vcpus, memory: spec.params.memory, maxphyaddr: layoutFor(spec.mode).maxphyaddr },
              metaOf(spec),
            ),
        );
  const sink = userErrors(extra.output ?? '', () => fileSink(extra.output));
  const progress = startProgress(
    `${spec.workload.name} on ${pagerName}`,
    Math.round(spec.workload.opsAtSize1 * spec.params.size),
  );
  let r: ReturnType<typeof runWorkload>;
  try {
    r = runWorkload({
      ...machineOf(spec, o, pager),
      recorder,
      out: sink.out,
      onProgress: (n) => progress.update(n),
    });
  } catch (e) {
    throw outOfMemory(e, spec);
  } finally {
    progress.stop();
    sink.close();
  }
  const stats = {
    ...collectStats(pager, r.port.cpus, r.ops, r.seconds),
    ...r.kernel.stats(),
    ...programStats(r.kernel),
  };
  recorder?.close({ digest: r.digest, ops: r.ops, guest: r.kernel.stats() });
  return { stats, digest: r.digest, seconds: r.seconds };
}

function runCommand(o: RunOptions): void {
  const spec = specOf(o);
  const costs = costsOf(o);
  const m = measure(spec, o, o.pager, { record: o.record, output: o.output });
  process.stdout.write(report(metaOf(spec), m.stats, m.digest, costs));
  timing(m);
  writeStats(m.stats, { ...metaOf(spec), pager: o.pager, layout: o.layout }, m.digest, o);
}

function timing(m: Measured): void {
  const ops = m.stats.ops as number;
  process.stderr.write(
    `ran ${ops.toLocaleString('en-US')} guest operations in ${m.seconds.toFixed(2)} s (${(ops / Math.max(m.seconds, 1e-9) / 1e6).toFixed(2)} M/s) under ${m.stats.pager}\n`,
  );
}

function writeStats(
  s: Stats,
  run: Record<string, unknown>,
  digest: string,
  o: { stats?: boolean; statsJson?: string },
): void {
  if (o.stats) process.stderr.write(formatStats(s));
  if (o.statsJson) writeFileSync(o.statsJson, `${JSON.stringify(statsDocument(s, run, digest), null, 2)}\n`);
}

async function compareCommand(o: CompareOptions): Promise<void> {
  const spec = specOf(o);
  const costs = costsOf(o);
  const names = o.pagers.split(',').map((p) => p.trim());
  if (names.length === 0 || names.some((n) => n === '')) throw new UsageError(`--pagers ${o.pagers}: empty pager name`);
  for (const n of names) makePager(n, false, o.shadowPool); // reject bad specs before running anything
  const runs: Measured[] = [];
  for (const n of names) {
    const m = measure(spec, o, n, {});
    timing(m);
    runs.push(m);
  }
  const first = runs[0] as Measured;
  for (const r of runs) {
    if (r.digest !== first.digest) {
      throw new UsageError(
        `transparency violated: the guest saw different things under ${first.stats.pager} and ${r.stats.pager} (digest ${first.digest.slice(0, 16)}… vs ${r.digest.slice(0, 16)}…)`,
      );
    }
  }
  const stats = runs.map((r) => r.stats);
  const c = compareRows(stats, costs);
  if (o.json) process.stdout.write(renderJson(c, { ...metaOf(spec), layout: o.layout }, first.digest));
  else if (o.csv) process.stdout.write(renderCsv(c));
  else {
    process.stdout.write(
      `${header(metaOf(spec))}\nguest-visible output identical under ${names.join(', ')}: sha256 ${first.digest}\n\n`,
    );
    process.stdout.write(renderText(c));
  }
  if (o.plot !== undefined)
    writeFileSync(o.plot, await plotSvg(stats, costs, { title: `${spec.workload.name}: pagers compared` }));
}

interface MigrateCommandOptions extends GuestOptions {
  pager: string;
  warmup: string;
  bandwidth: string;
  maxRounds: string;
  stopPages: string;
  json?: boolean;
  stats?: boolean;
}

/**
 * Guest operations per page sent: the guest runs about a million modelled
 * operations per second per vCPU (docs/costs.md, guest_work), a page takes
 * 4096 × 8 / bandwidth seconds on the link.
 */
export function opsPerPage(vcpus: number, mbit: number): number {
  const pagesPerSecond = (mbit * 1e6) / 8 / 4096;
  return Math.max(1, Math.round((vcpus * 1e6) / pagesPerSecond));
}

/** The kernel running on `port`, as migration drives it. */
export function migratingGuest({ port, kernel }: ReturnType<typeof startWorkload>): MigratingGuest {
  return {
    get ops() {
      return port.ops;
    },
    runUntil: (ops) => kernel.run(undefined, ops),
  };
}

function migrateCommand(o: MigrateCommandOptions): void {
  const spec = specOf(o);
  const pager = makePager(o.pager, o.check, o.shadowPool);
  const mbit = parseIntOption('--bandwidth', o.bandwidth, 1, 1e6);
  const per = opsPerPage(spec.params.vcpus, mbit);
  const t0 = performance.now();
  const { port, kernel } = startWorkload(machineOf(spec, o, pager));
  // The domain's log-dirty mode works if the pager registered its half at attach.
  const logDirty = port.domain.logDirty;
  const switchedOff = /(^|:)-logdirty(:|$)/.test(o.pager);
  if (!logDirty.supported && !switchedOff)
    throw new UsageError(`--pager ${o.pager}: this pager cannot track dirty pages; migration needs log-dirty mode`);
  let r: ReturnType<typeof migrate>;
  try {
    r = migrate({
      domain: port.domain,
      cpus: port.cpus,
      guest: migratingGuest({ port, kernel }),
      logDirty: logDirty.supported ? logDirty : null,
      warmupOps: parseIntOption('--warmup', o.warmup, 0, 2 ** 40),
      opsPerPage: per,
      maxRounds: parseIntOption('--max-rounds', o.maxRounds, 1, 1000),
      stopPages: parseIntOption('--stop-pages', o.stopPages, 0, 2 ** 30),
      maxFactor: 3,
    });
  } catch (e) {
    throw outOfMemory(e, spec);
  }
  const ms = (pages: number): string => (((pages * 4096 * 8) / (mbit * 1e6)) * 1000).toFixed(2);
  if (o.json) {
    process.stdout.write(
      `${JSON.stringify(
        {
          run: { ...metaOf(spec), pager: pager.name, layout: o.layout },
          // The guest's memory at the switch-over, which the destination must hold.
          digest: r.sourceSha256,
          pager: { name: pager.name.split(':')[0], spec: pager.name, counters: pager.stats() },
          migration: { bandwidthMbit: mbit, opsPerPage: per, ...r, downtimeMs: Number(ms(r.pausePages)) },
        },
        null,
        2,
      )}\n`,
    );
  } else {
    const lines = [header(metaOf(spec)), `pager      ${pager.name}`];
    lines.push(
      r.rounds.length > 0
        ? `migration  pre-copy with log-dirty over a ${n(mbit)} Mbit/s link (the guest runs ${per} operations per page sent)`
        : `migration  stop-and-copy (no log-dirty): the guest is paused while all of its memory is copied`,
    );
    if (r.rounds.length > 0) {
      lines.push('round   pages sent   guest ops meanwhile');
      for (const x of r.rounds)
        lines.push(`${String(x.round).padStart(5)}  ${n(x.pagesSent).padStart(11)}  ${n(x.guestOps).padStart(18)}`);
      lines.push(`stopped    ${r.stopReason}${r.guestFinished ? ' (the workload had finished)' : ''}`);
    }
    lines.push(`paused     ${n(r.pausePages)} pages copied with the guest stopped: ${ms(r.pausePages)} ms of downtime`);
    lines.push(`sent       ${n(r.totalPages)} pages in all`);
    lines.push(`verified   destination ${r.verified ? '=' : '≠'} source: sha256 ${r.destinationSha256}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  if (o.stats)
    process.stderr.write(formatStats(collectStats(pager, port.cpus, port.ops, (performance.now() - t0) / 1000)));
  if (!r.verified)
    throw new UsageError(`migration lost writes: destination ${r.destinationSha256} ≠ source ${r.sourceSha256}`);
}

function replayCommand(
  file: string,
  o: {
    pager: string;
    layout: LayoutKind;
    tlb: string;
    check?: boolean;
    shadowPool?: string;
    costs?: string;
    output?: string;
    stats?: boolean;
    statsJson?: string;
  },
): void {
  const costs = costsOf(o);
  const pager = makePager(o.pager, o.check, o.shadowPool);
  const sink = userErrors(o.output ?? '', () => fileSink(o.output));
  const trace = userErrors(file, () => openTrace(file), [TraceError]);
  const progress = startProgress(`replay on ${o.pager}`, trace.ops);
  let r: ReturnType<typeof replayTrace>;
  try {
    // Place guest frames as the live run did (its --layout scatter seed is the workload seed).
    const recorded = trace.meta.seed;
    const seed = typeof recorded === 'number' ? recorded >>> 0 : 0;
    r = replayTrace(trace, {
      pager,
      layout: o.layout,
      seed,
      tlb: parseTlb(o.tlb),
      out: sink.out,
      digest: true,
      onProgress: (done) => progress.update(done),
    });
  } catch (e) {
    if (e instanceof TraceError) throw new UsageError(e.message);
    throw e;
  } finally {
    progress.stop();
    sink.close();
  }
  const digest = r.port.digest;
  const meta = plainMeta(r.meta);
  const guest = guestCounters(r.trailer.guest);
  const stats: Stats = { ...collectStats(pager, r.port.cpus, r.ops, r.seconds), ...guest };
  process.stdout.write(report(meta, stats, digest, costs));
  timing({ stats, digest, seconds: r.seconds });
  writeStats(stats, { ...meta, trace: file, pager: o.pager, layout: o.layout }, digest, o);
  if (typeof r.trailer.digest === 'string' && r.trailer.digest !== digest) {
    throw new UsageError(`replay diverged from the recorded run: digest ${digest} vs recorded ${r.trailer.digest}`);
  }
}

/**
 * A trace's metadata as report() may print it: a value that is not a
 * string, number or boolean (the file is input) is shown as its JSON, so
 * no object reaches String() or Number() ({"toString":1} would throw).
 */
function plainMeta(meta: Record<string, unknown>): Record<string, string | number | boolean> {
  return Object.fromEntries(
    Object.entries(meta).map(([k, v]) => [
      k,
      typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : JSON.stringify(v),
    ]),
  );
}

/** The guest kernel's counters a trailer recorded: numeric "guest.*" entries only (the file is input). */
function guestCounters(v: unknown): Record<string, number> {
  if (typeof v !== 'object' || v === null) return {};
  return Object.fromEntries(
    Object.entries(v).filter(([k, x]) => k.startsWith('guest.') && typeof x === 'number'),
  ) as Record<string, number>;
}

function header(meta: Record<string, unknown>): string {
  const w = workload(String(meta.workload));
  const mib = Number(meta.memory) / 2 ** 20;
  const balloon = meta.balloon === undefined ? '' : `; balloon ${mibOf(Number(meta.balloon))}`;
  return [
    `workload   ${meta.workload}${w ? `: ${w.description}` : ''}`,
    `guest      ${meta.mode}, ${meta.vcpus} vCPU(s), ${mib.toLocaleString('en-US')} MiB RAM, PCID ${meta.pcid ? 'on' : 'off'}, THP ${meta.thp ? 'on' : 'off'}; size ${meta.size}, seed ${meta.seed}${balloon}`,
  ].join('\n');
}

const mibOf = (bytes: number): string =>
  `${(bytes / 2 ** 20).toLocaleString('en-US', { maximumFractionDigits: 2 })} MiB`;
const n = (v: unknown): string => (typeof v === 'number' ? v.toLocaleString('en-US') : String(v));
const pct = (a: number, b: number): string => (b === 0 ? '0%' : `${((100 * a) / b).toFixed(1)}%`);

/** The deterministic summary of a run (identical for a live run and its replay under the same pager). */
function report(meta: Record<string, unknown>, s: Stats, digest: string, costs: CostModel): string {
  const g = (k: string): number => (typeof s[k] === 'number' ? (s[k] as number) : 0);
  const lines = [header(meta)];
  lines.push(`pager      ${s.pager}`);
  lines.push(`digest     sha256 ${digest} (guest-visible output)`);
  lines.push(`operations ${n(s.ops)} (user accesses ${n(g('guest.user_accesses'))})`);
  const procs = g('guest.processes');
  lines.push(
    `processes  ${n(procs)} created, ${n(g('guest.threads'))} threads, ${n(g('guest.execs'))} execs, ${n(g('guest.kills'))} killed; ${n(g('guest.context_switches'))} context switches`,
  );
  const pf = g('guest.page_faults');
  // Kinds are shares of user-mode faults; the kernel's own faults on user memory (copy_to_user) are named apart.
  const kf = g('guest.page_faults.kernel');
  const uf = pf - kf;
  const cow = g('guest.page_faults.cow') + g('guest.page_faults.cow_reuse') - g('guest.page_faults.kernel_cow');
  lines.push(
    `faults     ${n(pf)} (${procs ? n(Math.round(pf / procs)) : 0} per process): ${pct(g('guest.page_faults.write') - g('guest.page_faults.kernel_write'), uf)} writes, ${pct(g('guest.page_faults.fetch'), uf)} instruction fetches, ${pct(cow, uf)} copy-on-write${kf > 0 ? ` of user-mode faults; ${n(kf)} in kernel mode (copy_to_user)` : ''}`,
  );
  const sys = Object.keys(s)
    .filter((k) => k.startsWith('guest.syscalls.'))
    .map((k) => `${k.slice(15)} ${n(s[k])}`);
  lines.push(`syscalls   ${n(g('guest.syscalls'))} (${sys.join(', ')})`);
  if (typeof s['guest.program.accesses'] === 'number') {
    lines.push(
      `program    ${n(g('guest.program.accesses'))} captured accesses replayed as ${n(g('guest.program.access_runs'))} (identical repeats collapsed), ${n(g('guest.program.syscalls'))} captured system calls, ${n(g('guest.program.killed'))} processes killed`,
    );
  }
  lines.push(
    `TLB        hit rate ${pct(g('tlb_hits'), g('tlb_hits') + g('tlb_misses'))}, ${n(g('walks'))} walks, ${g('memory_refs_per_walk')} memory references per walk; ${n(g('guest.shootdown_ipis'))} shootdown IPIs`,
  );
  if (typeof s['guest.balloon.frames_out'] === 'number') {
    lines.push(
      `balloon    ${n(g('guest.balloon.frames_out'))} frames given back, ${n(g('guest.balloon.frames_in'))} reclaimed, in ${n(g('guest.balloon.p2m_ops'))} p2m operations; at most ${n(g('guest.balloon.frames_peak'))} frames (${mibOf(g('guest.balloon.frames_peak') * 4096)}) out; ${n(g('guest.balloon.short'))} runs short of free memory, ${n(g('guest.balloon.oom_deflates'))} deflations on OOM`,
    );
  }
  for (const [heading, text] of pagerSummary(s)) lines.push(`${heading.padEnd(10)} ${text}`);
  const cyc = modelCycles(s, costs);
  lines.push(`cycles     ${n(Math.round(cyc.total))} modelled (docs/costs.md)`);
  const real = realFigures();
  const rows = real === null ? [] : calibrationRows(String(meta.workload), s, Number(meta.size), real);
  if (rows.length > 0) {
    lines.push(`real counterpart measured here (calibrate/real.json, ${String(real?.machine.kernel ?? '')}):`);
    for (const c of calibrationLines(rows)) lines.push(`  ${c}`);
  }
  const cal = calibration(String(meta.workload), s, Number(meta.size));
  if (cal.length > 0) {
    lines.push('calibration against the measured real run (shared/corpus/realworkloads):');
    for (const c of cal) lines.push(`  ${c}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The bundled figures of the workloads' real counterparts (npm run calibrate), or null when absent. */
function realFigures(): RealFigures | null {
  const file = fileURLToPath(new URL('../../../calibrate/real.json', import.meta.url));
  if (!existsSync(file)) return null;
  const r = parseRealFigures(JSON.parse(readFileSync(file, 'utf8')));
  if (typeof r === 'string') throw new UsageError(`${file}: ${r}`);
  return r;
}
