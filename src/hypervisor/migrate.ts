/**
 * Pre-copy live migration (Clark et al., "Live Migration of Virtual
 * Machines", NSDI 2005; Xen's save/restore loop): copy all of the guest's
 * memory while it runs, then repeatedly the pages it dirtied meanwhile (read
 * from the shadow pager's log-dirty bitmap, which is cleaned at each read),
 * until the dirty set is small or the rounds run out; then pause the guest
 * and copy the rest (stop-and-copy). The destination is a separate image;
 * the run ends by checking it equals the source, page for page (SHA-256).
 *
 * Time is counted in guest operations: while one page crosses the link the
 * guest runs `opsPerPage` operations (see MigrateOptions).
 */
import type { Kernel } from '../guest/kernel/kernel.js';
import type { GuestPort } from '../guest/port.js';
import type { ShadowPager } from '../pagers/shadow/shadow.js';
import { imageSha256 } from './domain.js';

export interface MigrateOptions {
  port: GuestPort;
  kernel: Kernel;
  pager: ShadowPager;
  /** Use the log-dirty bitmap (pre-copy); false: stop-and-copy of everything. */
  logDirty: boolean;
  /** Guest operations run before migration starts. */
  warmupOps: number;
  /** Guest operations per page sent (link speed relative to the guest). */
  opsPerPage: number;
  /** At most this many pre-copy rounds (Xen: 29 after the first). */
  maxRounds: number;
  /** Stop when fewer pages than this were dirtied in a round (Xen: 50). */
  stopPages: number;
  /** Stop when this many times the guest's RAM has been sent (Xen: 3). */
  maxFactor: number;
}

export interface MigrateRound {
  round: number;
  pagesSent: number;
  /** Guest operations run while this round's pages were sent. */
  guestOps: number;
}

export interface MigrateResult {
  rounds: MigrateRound[];
  /** Pages copied with the guest paused: the downtime. */
  pausePages: number;
  totalPages: number;
  /** Why pre-copy stopped. */
  stopReason: 'converged' | 'max-rounds' | 'max-factor' | 'guest-finished' | 'no-log-dirty';
  /** Did the workload finish during migration? */
  guestFinished: boolean;
  sourceSha256: string;
  destinationSha256: string;
  verified: boolean;
}

export function migrate(o: MigrateOptions): MigrateResult {
  const { port, kernel, pager } = o;
  const guest = port.domain.guest;
  const ramFrames = port.domain.placement.ramFrames;
  const dest = new Map<number, Uint32Array>();
  const send = (gfn: number): void => {
    dest.set(gfn, guest.frameForRead(gfn).slice());
  };
  let finished = kernel.run(undefined, port.ops + o.warmupOps);
  const rounds: MigrateRound[] = [];
  let total = 0;
  let stopReason: MigrateResult['stopReason'] = 'no-log-dirty';
  /** Let the guest run while `pages` pages cross the link. */
  const runWhileSending = (pages: number): number => {
    const before = port.ops;
    if (!finished) finished = kernel.run(undefined, port.ops + pages * o.opsPerPage);
    return port.ops - before;
  };
  if (o.logDirty) {
    for (const c of port.cpus) {
      if (c.format === null) throw new Error('log-dirty migration needs every vCPU to run with paging on');
    }
    pager.logDirtyEnable();
    // Round 0: everything the guest has ever touched (untouched frames are zero on both sides).
    let batch = residentFrames(port);
    for (let round = 0; ; round++) {
      for (const gfn of batch) send(gfn);
      total += batch.length;
      rounds.push({ round, pagesSent: batch.length, guestOps: runWhileSending(batch.length) });
      batch = pager.logDirtyClean();
      if (finished && batch.length === 0) {
        stopReason = 'guest-finished';
        break;
      }
      if (batch.length < o.stopPages) {
        stopReason = 'converged';
        break;
      }
      if (round + 1 >= o.maxRounds) {
        stopReason = 'max-rounds';
        break;
      }
      if (total + batch.length > o.maxFactor * ramFrames) {
        stopReason = 'max-factor';
        break;
      }
    }
    // Stop-and-copy: the guest is paused; what it dirtied since the last round goes now.
    for (const gfn of batch) send(gfn);
    total += batch.length;
    pager.logDirtyDisable();
    const pausePages = batch.length;
    return result(port, dest, rounds, pausePages, total, stopReason, finished);
  }
  const all = residentFrames(port);
  for (const gfn of all) send(gfn);
  return result(port, dest, rounds, all.length, all.length, stopReason, finished);
}

function result(
  port: GuestPort,
  dest: Map<number, Uint32Array>,
  rounds: MigrateRound[],
  pausePages: number,
  totalPages: number,
  stopReason: MigrateResult['stopReason'],
  guestFinished: boolean,
): MigrateResult {
  const sourceSha256 = port.domain.memorySha256();
  const destinationSha256 = imageSha256([...dest]);
  return {
    rounds,
    pausePages,
    totalPages,
    stopReason,
    guestFinished,
    sourceSha256,
    destinationSha256,
    verified: sourceSha256 === destinationSha256,
  };
}

/** Guest frames that exist in machine memory (ever written), ascending. */
function residentFrames(port: GuestPort): number[] {
  const out: number[] = [];
  const d = port.domain;
  for (const mfn of d.mem.materializedMfns()) {
    const gfn = d.placement.gfnOf(mfn);
    if (gfn >= 0) out.push(gfn);
  }
  return out.sort((a, b) => a - b);
}
