/**
 * Running a workload: a machine, the guest kernel booted on it, the
 * workload's processes run to completion. What the guest observed (every
 * value read, every fault, the final memory and registers) is digested as it
 * happens (GuestPort.digest); with `out`, the same outcome is also written in
 * the scenario format, the bytes `umbra exec` prints for the recorded trace
 * converted to a scenario.
 *
 * With a balloon (params.balloon), its target changes about eight times
 * over the workload's expected length (Workload.opsAtSize1 × size): four
 * rounds of inflating and deflating while the workload runs.
 */
import type { TlbConfig } from '../../arch/x86/tlb.js';
import type { Pager } from '../../hypervisor/pager.js';
import type { LayoutKind } from '../../machine/placement.js';
import { GuestPort, type OpRecorder } from '../port.js';
import { Kernel } from './kernel.js';
import { type KernelMode, layoutFor } from './layout.js';
import type { BalloonConfig, PageCacheState } from './state.js';
import type { Workload, WorkloadParams } from './workloads.js';

export interface WorkloadRunOptions {
  workload: Workload;
  params: WorkloadParams;
  mode: KernelMode;
  pcid: boolean;
  /** Lazy TLB mode (default on) and fault-around pages (default 16; 1 = off): KernelOptions. */
  lazyTlb?: boolean;
  faultAround?: number;
  readahead?: number;
  /** The page cache at boot (KernelOptions.pageCache); default: the workload's. */
  pageCache?: PageCacheState;
  verify?: boolean;
  pager: Pager;
  layout: LayoutKind;
  tlb?: TlbConfig;
  recorder?: OpRecorder;
  /** Also receives the guest-visible output (e.g. to write it to a file). */
  out?: (chunk: Uint8Array) => void;
  /** Called now and then with the number of operations run so far. */
  onProgress?: (ops: number) => void;
}

export interface WorkloadRun {
  port: GuestPort;
  kernel: Kernel;
  /** SHA-256 (hex) of the guest-visible outcome (GuestPort.digest). */
  digest: string;
  ops: number;
  seconds: number;
}

/** A booted guest kernel with the workload's first process started, not yet run. */
export function startWorkload(o: WorkloadRunOptions): { port: GuestPort; kernel: Kernel } {
  const machine = { vcpus: o.params.vcpus, memory: o.params.memory, maxphyaddr: layoutFor(o.mode).maxphyaddr };
  const port = new GuestPort(machine, {
    pager: o.pager,
    layout: o.layout,
    seed: o.params.seed,
    tlb: o.tlb,
    out: o.out,
    digest: true,
  });
  port.autoLine = true;
  port.recorder = o.recorder ?? null;
  const kernel = new Kernel(port, {
    mode: o.mode,
    pcid: o.pcid,
    thp: o.params.thp,
    verify: o.verify ?? false,
    balloon: balloonConfig(o.workload, o.params),
    lazyTlb: o.lazyTlb,
    faultAround: o.faultAround,
    readahead: o.readahead,
    pageCache: o.pageCache ?? o.workload.pageCache ?? 'cold',
  });
  kernel.boot();
  o.workload.start(kernel, o.params);
  return { port, kernel };
}

/** Fewest guest operations a balloon target lasts (tiny runs still see it move). */
export const BALLOON_MIN_PERIOD = 5000;

/** The balloon a run asks for, paced by the workload's expected length; undefined without one. */
export function balloonConfig(w: Workload, p: WorkloadParams): BalloonConfig | undefined {
  const bytes = p.balloon ?? 0;
  if (bytes === 0) return undefined;
  if (!Number.isInteger(bytes / 4096) || bytes < 0 || bytes >= p.memory) {
    throw new RangeError(`balloon of ${bytes} bytes: must be a multiple of 4 KiB below the guest's RAM`);
  }
  const period = Math.max(BALLOON_MIN_PERIOD, Math.round((w.opsAtSize1 * p.size) / 8));
  return { frames: bytes / 4096, period, seed: p.seed };
}

export function runWorkload(o: WorkloadRunOptions): WorkloadRun {
  const t0 = performance.now();
  const { port, kernel } = startWorkload(o);
  let slices = 0;
  const progress = o.onProgress;
  kernel.run(progress === undefined ? undefined : () => (++slices & 255) === 0 && progress(port.ops));
  const seconds = (performance.now() - t0) / 1000;
  port.finish();
  return { port, kernel, digest: port.digest, ops: port.ops, seconds };
}
