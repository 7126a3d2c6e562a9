/**
 * The balloon driver (Linux's drivers/xen/balloon.c; virtio_balloon.c works
 * the same way): the host sets a target, and a kernel worker gives the
 * hypervisor back free memory until the balloon holds that much, or takes
 * it back when the target falls. Giving back is Xen's
 * XENMEM_decrease_reservation — here a `p2m ... none` operation, after which
 * the frames read all ones and discard writes; taking back is
 * XENMEM_populate_physmap — `p2m ... ram`, which brings them back
 * zero-filled. The guest's usable memory shrinks and grows while its
 * workload runs, and every pager sees its P2M change under a live guest.
 *
 * The host's target follows a schedule: it alternates between the
 * configured size and zero, each phase lasting 0.75–1.25 periods of guest
 * operations, drawn from the seed; the first phase (empty) lets the
 * workload start.
 *
 * Rules:
 *  - Only free frames go into the balloon (FrameAllocator.balloonTake):
 *    never a frame in use, never a page table. Nothing is cleared before a
 *    frame goes (the hypervisor scrubs what it gets back); frames come back
 *    zero, onto the allocator's clean list.
 *  - A worker run moves frames BALLOON_BATCH at a time (one hypercall's
 *    frame list, as Xen's balloon_process does) until the target is
 *    reached; each batch is sorted and issued as one p2m operation per run
 *    of consecutive frames.
 *  - Inflation leaves the low watermark (BalloonState.reserve) free and,
 *    running short of it, backs off; an allocation that finds nothing free
 *    deflates one batch first (virtio's deflate-on-OOM). The balloon never
 *    runs the guest out of memory.
 *  - The kernel never touches a ballooned frame: its own reads and writes
 *    and every mapping it makes check (kmem.ts assertBacked), and with
 *    --verify the worker checks its frames after every run (verify.ts).
 *  - What the worker does depends on the seed and the operation count
 *    alone, so a run is as deterministic with a balloon as without.
 */

import { PHYS_NONE, PHYS_RAM } from '../../hypervisor/physmap.js';
import { rng } from '../rng.js';
import { kfetch } from './kmem.js';
import { type BalloonConfig, BalloonState, ENTRY_BALLOON, type KernelState } from './state.js';
import { checkBalloon } from './verify.js';

/** Frames per worker run: one page of 8-byte frame numbers, Xen's balloon frame_list. */
export const BALLOON_BATCH = 512;

/** Set up the balloon driver of `k` (before boot; the worker first runs after the first phase). */
export function initBalloon(k: KernelState, config: BalloonConfig): void {
  if (!Number.isInteger(config.frames) || config.frames < 1) throw new RangeError('balloon: frames must be ≥ 1');
  if (!Number.isInteger(config.period) || config.period < 1) throw new RangeError('balloon: period must be ≥ 1');
  const b = new BalloonState(config, k.frames.frames, rng((config.seed ^ 0xba11007) >>> 0));
  b.nextChange = phase(b);
  k.balloon = b;
  k.frames.onExhausted = () => oomDeflate(k);
}

/** Operations the next phase lasts. */
function phase(b: BalloonState): number {
  return Math.max(1, Math.round(b.config.period * (0.75 + 0.5 * b.rnd())));
}

/**
 * The worker, run by the scheduler between time slices: follow a target
 * change that is due, then move toward the target.
 */
export function balloonWork(k: KernelState): void {
  const b = k.balloon;
  if (b === null) return;
  const ops = k.port.ops;
  if (ops >= b.nextChange) {
    b.target = b.target === 0 ? b.config.frames : 0;
    b.nextChange = ops + phase(b);
    b.retryAt = 0;
    k.counters.balloonTargetChanges++;
  }
  if (b.held.length === b.target || ops < b.retryAt) return;
  // The worker is woken (a xenstore watch / virtio config interrupt) and runs in the kernel.
  kfetch(k, ENTRY_BALLOON);
  k.counters.balloonRuns++;
  // Batch after batch until the target is reached, as Xen's balloon_process loops.
  while (b.held.length < b.target) {
    const want = Math.min(b.target - b.held.length, BALLOON_BATCH);
    if (inflate(k, want) < want) {
      // Too little free memory: try again later (balloon_process backs off the same way).
      k.counters.balloonShort++;
      b.retryAt = ops + Math.max(1, Math.round(b.config.period / 16));
      break;
    }
  }
  while (b.held.length > b.target) deflate(k, Math.min(b.held.length - b.target, BALLOON_BATCH));
  if (k.opts.verify) checkBalloon(k);
}

/** Give up to `n` free frames to the hypervisor, leaving the watermark free; returns how many went. */
function inflate(k: KernelState, n: number): number {
  const b = k.balloon as BalloonState;
  const f = k.frames;
  const take = Math.min(n, f.freeFrames - b.reserve);
  const got: number[] = [];
  for (let i = 0; i < take; i++) {
    const gfn = f.balloonTake(b.reserve);
    if (gfn < 0) break;
    got.push(gfn);
  }
  got.sort((x, y) => x - y);
  p2mRuns(k, got, PHYS_NONE);
  for (const gfn of got) b.held.push(gfn);
  k.counters.balloonFramesOut += got.length;
  if (b.held.length > k.counters.balloonPeak) k.counters.balloonPeak = b.held.length;
  return got.length;
}

/** Take up to `n` frames back from the hypervisor (the newest first) and free them; returns how many. */
function deflate(k: KernelState, n: number): number {
  const b = k.balloon as BalloonState;
  const back = b.held.splice(b.held.length - n, n).sort((x, y) => x - y);
  p2mRuns(k, back, PHYS_RAM);
  for (const gfn of back) k.frames.balloonGive(gfn);
  k.counters.balloonFramesIn += back.length;
  return back.length;
}

/** An allocation found nothing free: deflate one batch now, whatever the target (deflate on OOM). */
function oomDeflate(k: KernelState): number {
  const b = k.balloon as BalloonState;
  if (b.held.length === 0) return 0;
  k.counters.balloonOomDeflates++;
  // Do not inflate again before the next phase: the memory is needed.
  b.retryAt = b.nextChange;
  return deflate(k, Math.min(b.held.length, BALLOON_BATCH));
}

/** One p2m operation of `type` per run of consecutive frames in ascending `gfns`. */
function p2mRuns(k: KernelState, gfns: readonly number[], type: number): void {
  let i = 0;
  while (i < gfns.length) {
    const first = gfns[i] as number;
    let count = 1;
    while (i + count < gfns.length && gfns[i + count] === first + count) count++;
    k.port.p2m(first, count, type);
    k.counters.balloonP2mOps++;
    i += count;
  }
}
