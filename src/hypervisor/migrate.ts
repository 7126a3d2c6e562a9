/**
 * Pre-copy live migration (Clark et al., "Live Migration of Virtual
 * Machines", NSDI 2005; Xen's save/restore loop): copy all of the guest's
 * memory while it runs, then repeatedly the pages it dirtied meanwhile (read
 * from the domain's log-dirty bitmap, which is cleaned at each read: the
 * shadow or nested pager makes writes show in it),
 * until the dirty set is small or the rounds run out; then pause the guest
 * and copy the rest (stop-and-copy). The destination is a separate image;
 * the run ends by checking it equals the source, page for page (SHA-256).
 *
 * Time is counted in guest operations: while one page crosses the link the
 * guest runs `opsPerPage` operations (see MigrateOptions).
 */
import type { Cpu } from '../arch/x86/cpu.js';
import { type Domain, imageSha256 } from './domain.js';
import type { LogDirty } from './logdirty.js';

/** The running guest as migration sees it (the hypervisor knows no workload, only that it runs). */
export interface MigratingGuest {
  /** Guest operations run so far. */
  readonly ops: number;
  /** Run until `ops` operations have run in all; true once the workload has finished. */
  runUntil(ops: number): boolean;
}

export interface MigrateOptions {
  domain: Domain;
  cpus: readonly Cpu[];
  guest: MigratingGuest;
  /** The domain's log-dirty mode (pre-copy); null: stop-and-copy of everything. */
  logDirty: LogDirty | null;
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
  const { domain, guest, logDirty } = o;
  const ramFrames = domain.placement.ramFrames;
  const dest = new Map<number, Uint32Array>();
  const send = (gfn: number): void => {
    dest.set(gfn, domain.guest.frameForRead(gfn).slice());
  };
  let finished = guest.runUntil(guest.ops + o.warmupOps);
  const rounds: MigrateRound[] = [];
  let total = 0;
  let stopReason: MigrateResult['stopReason'] = 'no-log-dirty';
  /** Let the guest run while `pages` pages cross the link. */
  const runWhileSending = (pages: number): number => {
    const before = guest.ops;
    if (!finished) finished = guest.runUntil(guest.ops + pages * o.opsPerPage);
    return guest.ops - before;
  };
  if (logDirty !== null) {
    for (const c of o.cpus) {
      if (c.format === null && !logDirty.pagingOffTracked)
        throw new Error('log-dirty migration needs every vCPU to run with paging on');
    }
    logDirty.enable();
    // Round 0: everything the guest has ever touched (untouched frames are zero on both sides).
    let batch = residentFrames(domain);
    for (let round = 0; ; round++) {
      for (const gfn of batch) send(gfn);
      total += batch.length;
      rounds.push({ round, pagesSent: batch.length, guestOps: runWhileSending(batch.length) });
      batch = logDirty.clean();
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
    logDirty.disable();
    const pausePages = batch.length;
    return result(domain, dest, rounds, pausePages, total, stopReason, finished);
  }
  const all = residentFrames(domain);
  for (const gfn of all) send(gfn);
  return result(domain, dest, rounds, all.length, all.length, stopReason, finished);
}

function result(
  domain: Domain,
  dest: Map<number, Uint32Array>,
  rounds: MigrateRound[],
  pausePages: number,
  totalPages: number,
  stopReason: MigrateResult['stopReason'],
  guestFinished: boolean,
): MigrateResult {
  const sourceSha256 = domain.memorySha256();
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
function residentFrames(d: Domain): number[] {
  const out: number[] = [];
  for (const mfn of d.mem.materializedMfns()) {
    const gfn = d.placement.gfnOf(mfn);
    if (gfn >= 0) out.push(gfn);
  }
  return out.sort((a, b) => a - b);
}
