/**
 * How close a workload comes to the real program it imitates: its figures
 * next to those measured on a real Linux machine
 * (shared/corpus/realworkloads/README.md, Linux 6.18, 2 vCPUs, PCID on).
 * Figures that scale with --size are compared per process.
 */

import { own } from '../util/json.js';
import type { Stats } from './stats.js';

interface Reference {
  label: string;
  real: number;
  /** The model's figure from a run's statistics. */
  model: (g: (k: string) => number) => number;
  unit?: '%';
  /** Absolute figures hold only at size 1. */
  perRun?: boolean;
}

const per = (a: number, b: number): number => (b === 0 ? 0 : a / b);
/**
 * Fault kinds are shares of user-mode faults, as the real figures are
 * (perf's exceptions:page_fault_user); the kernel's own faults on user
 * memory (copy_to_user) count in the total only, as in perf's page-faults.
 */
const userFaults = (g: (k: string) => number): number => g('guest.page_faults') - g('guest.page_faults.kernel');
const userWrites = (g: (k: string) => number): number =>
  g('guest.page_faults.write') - g('guest.page_faults.kernel_write');
/** User-mode faults that wrote a present page (the error code's W and P): copy-on-write or reuse. */
const userPresentWrites = (g: (k: string) => number): number =>
  g('guest.page_faults.cow') +
  g('guest.page_faults.cow_reuse') -
  g('guest.page_faults.cow_file') -
  g('guest.page_faults.kernel_cow');
const MM_SYSCALLS = ['mmap', 'munmap', 'mprotect', 'brk'];
const mmSyscalls = (g: (k: string) => number): number => MM_SYSCALLS.reduce((s, k) => s + g(`guest.syscalls.${k}`), 0);

const REFERENCES: Record<string, Reference[]> = {
  compile: [
    { label: 'processes created', real: 127, model: (g) => g('guest.processes'), perRun: true },
    { label: 'page faults per process', real: 1204, model: (g) => per(g('guest.page_faults'), g('guest.processes')) },
    {
      label: 'faults that are writes',
      real: 82,
      unit: '%',
      model: (g) => 100 * per(userWrites(g), userFaults(g)),
    },
    // 5,420 memory-management syscalls/s over 1.48 s and 127 processes.
    {
      label: 'mm syscalls per process',
      real: (5420 * 1.48) / 127,
      model: (g) => per(mmSyscalls(g), g('guest.processes')),
    },
    { label: 'TLB shootdown IPIs per run', real: 27, model: (g) => g('guest.shootdown_ipis'), perRun: true },
  ],
  forkexec: [
    { label: 'page faults per process', real: 135, model: (g) => per(g('guest.page_faults'), g('guest.processes')) },
    {
      label: 'faults that are copy-on-write',
      real: 36,
      unit: '%',
      model: (g) =>
        100 *
        per(
          g('guest.page_faults.cow') + g('guest.page_faults.cow_reuse') - g('guest.page_faults.kernel_cow'),
          userFaults(g),
        ),
    },
    {
      label: 'faults on instruction fetch',
      real: 28,
      unit: '%',
      model: (g) => 100 * per(g('guest.page_faults.fetch'), userFaults(g)),
    },
    // 23 k mm syscalls/s at 1,095 commands/s.
    { label: 'mm syscalls per process', real: 23000 / 1095, model: (g) => per(mmSyscalls(g), g('guest.processes')) },
    // 128 shootdowns over 6,000 commands.
    {
      label: 'TLB shootdown IPIs per 1,000 processes',
      real: (128 / 6000) * 1000,
      model: (g) => (1000 * g('guest.shootdown_ipis')) / Math.max(1, g('guest.processes')),
    },
  ],
};

/** Lines "figure: model vs real (difference)" for a workload with reference figures. */
export function calibration(workload: string, s: Stats, size: number): string[] {
  const refs = own(REFERENCES, workload);
  if (refs === undefined) return [];
  const g = (k: string): number => (typeof s[k] === 'number' ? (s[k] as number) : 0);
  const w = Math.max(...refs.map((r) => r.label.length));
  return refs.map((r) => {
    const m = r.model(g);
    const real = r.perRun ? r.real * size : r.real;
    const fmt = (v: number): string =>
      r.unit === '%' ? `${v.toFixed(1)}%` : v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1);
    const diff = real === 0 ? '' : ` (${m >= real ? '+' : ''}${((100 * (m - real)) / real).toFixed(0)}%)`;
    return `${r.label.padEnd(w)}  ${fmt(m).padStart(8)}  real ${fmt(real)}${diff}`;
  });
}

/** The reference figures, for docs and tests. */
export function referenceFigures(workload: string): Array<{ label: string; real: number }> {
  return (own(REFERENCES, workload) ?? []).map((r) => ({ label: r.label, real: r.real }));
}

/**
 * Figures of the real counterparts measured on this machine kind by
 * `npm run calibrate` (bench/calibrate.ts; calibrate/real.json): per
 * workload, totals of one run at the workload's size 1.
 */
export interface RealRun {
  what: string;
  processes_and_threads: number;
  page_faults: number;
  fault_write_pct: number;
  fault_fetch_pct: number;
  /** Faults writing a present page (error code W and P): copy-on-write, in these programs. */
  fault_cow_pct: number;
  mm_syscalls: number;
  context_switches: number;
  /** Switches in which the task blocked or exited (not preempted): the model has no other load. */
  context_switches_blocking: number;
  tlb_shootdown_interrupts: number;
  /** Shootdowns the run's own tasks sent (tlb:tlb_flush, "remote IPI send"). */
  tlb_shootdowns_sent: number;
  pte_kib_per_process: number;
}

export interface RealFigures {
  machine: Record<string, unknown>;
  workloads: Record<string, RealRun>;
}

/** One figure of a workload next to its real counterpart. */
export interface CalibrationRow {
  figure: string;
  model: number;
  real: number;
  /** A percentage (compared in points as well as by ratio). */
  percent: boolean;
  /** model / real (Infinity when real is 0 and model is not; 1 when both are 0). */
  ratio: number;
  /** Within 2× either way (percentages: or within 2 points). */
  within: boolean;
}

const MM_ALL = ['mmap', 'munmap', 'mprotect', 'brk', 'madvise', 'mremap'];

/**
 * The figures compared, each from a run's statistics and from the real
 * run's record. Totals are scaled by the run's size (the real run is the
 * workload at size 1); percentages and per-process figures are not.
 */
const FIGURES: Array<{
  figure: string;
  percent?: boolean;
  total?: boolean;
  model: (g: (k: string) => number) => number;
  real: (r: RealRun) => number;
}> = [
  {
    figure: 'processes and threads created',
    total: true,
    model: (g) => g('guest.processes') + g('guest.threads'),
    real: (r) => r.processes_and_threads,
  },
  { figure: 'page faults', total: true, model: (g) => g('guest.page_faults'), real: (r) => r.page_faults },
  {
    figure: 'faults that are writes',
    percent: true,
    model: (g) => 100 * per(userWrites(g), userFaults(g)),
    real: (r) => r.fault_write_pct,
  },
  {
    figure: 'faults on instruction fetch',
    percent: true,
    model: (g) => 100 * per(g('guest.page_faults.fetch'), userFaults(g)),
    real: (r) => r.fault_fetch_pct,
  },
  {
    // As the hardware error code tells it (write, page present): a private file page's first write is not among them.
    figure: 'faults that write a present page',
    percent: true,
    model: (g) => 100 * per(userPresentWrites(g), userFaults(g)),
    real: (r) => r.fault_cow_pct,
  },
  {
    figure: 'mm system calls',
    total: true,
    model: (g) => MM_ALL.reduce((s, k) => s + g(`guest.syscalls.${k}`), 0),
    real: (r) => r.mm_syscalls,
  },
  {
    // Preemptions are left out: on a shared machine they count the other load, which the model does not have.
    // An exiting task's last switch is not seen either: perf stops recording a task as it exits.
    figure: 'context switches that block',
    total: true,
    model: (g) => g('guest.context_switches') - g('guest.context_switches.preempted') - g('guest.exits'),
    real: (r) => r.context_switches_blocking,
  },
  {
    figure: 'TLB shootdown IPIs',
    total: true,
    model: (g) => g('guest.shootdown_ipis'),
    real: (r) => r.tlb_shootdowns_sent,
  },
  {
    figure: 'page-table pages per process',
    // Tables below the root as each address space was torn down, as VmPTE shows at exit.
    model: (g) => per(g('guest.tables_at_exit'), g('guest.mms_destroyed')),
    real: (r) => r.pte_kib_per_process / 4,
  },
];

/** Every figure of a workload's run next to its real counterpart's (none if it was not measured). */
export function calibrationRows(workload: string, s: Stats, size: number, real: RealFigures): CalibrationRow[] {
  const r = own(real.workloads, workload);
  if (r === undefined) return [];
  const g = (k: string): number => (typeof s[k] === 'number' ? (s[k] as number) : 0);
  return FIGURES.map((f) => {
    const model = f.model(g);
    const want = f.total === true ? f.real(r) * size : f.real(r);
    const ratio = want === 0 ? (model === 0 ? 1 : Number.POSITIVE_INFINITY) : model / want;
    const within = (ratio >= 0.5 && ratio <= 2) || (f.percent === true && Math.abs(model - want) <= 2);
    return { figure: f.figure, model, real: want, percent: f.percent === true, ratio, within };
  });
}

/** A real-figures document (calibrate/real.json) checked for shape: a message says what is wrong, or the figures. */
export function parseRealFigures(json: unknown): RealFigures | string {
  if (typeof json !== 'object' || json === null) return 'expected a JSON object';
  const doc = json as { machine?: unknown; workloads?: unknown };
  if (typeof doc.workloads !== 'object' || doc.workloads === null) return 'no "workloads" object';
  for (const [name, run] of Object.entries(doc.workloads as Record<string, unknown>)) {
    for (const f of FIGURES) {
      const v = f.real(run as RealRun);
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
        return `workload "${name}": a figure is missing or bad`;
    }
  }
  return {
    machine: (doc.machine ?? {}) as Record<string, unknown>,
    workloads: doc.workloads as Record<string, RealRun>,
  };
}

/** Lines "figure  model  real  ratio" for the run report. */
export function calibrationLines(rows: readonly CalibrationRow[]): string[] {
  const w = Math.max(...rows.map((r) => r.figure.length));
  const fmt = (v: number, percent: boolean): string =>
    percent ? `${v.toFixed(1)}%` : v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1);
  return rows.map(
    (r) =>
      `${r.figure.padEnd(w)}  ${fmt(r.model, r.percent).padStart(9)}  real ${fmt(r.real, r.percent)}  ×${Number.isFinite(r.ratio) ? r.ratio.toFixed(2) : '∞'}${r.within ? '' : '  outside 2×'}`,
  );
}
