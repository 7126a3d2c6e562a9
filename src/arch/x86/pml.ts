/**
 * Page-modification logging (Intel SDM vol. 3C, 29.3.6): with the "enable
 * PML" VM-execution control and EPT accessed/dirty flags on, the CPU writes
 * the guest-physical address (4 KiB aligned) of every access for which it
 * sets an EPT dirty flag from 0 to 1 into a 512-entry log, at the entry the
 * PML index names, and decrements the index (511 down to 0, then 0xffff).
 * Before setting any EPT accessed or dirty flag it checks the index: out of
 * 0..511, no flag is set, the access does not happen and a page-modification
 * log-full VM exit occurs (EXIT_PML_FULL). The host empties the log and
 * resets the index to 511 (Xen: ept_vcpu_flush_pml_buffer, p2m-ept.c).
 *
 * One per vCPU (the log and index live in its VMCS); the walker consults it
 * where it sets stage-2 A/D flags (walker.ts, stage2Frame).
 */
import type { WalkFormat } from './modes.js';
import type { WalkResult } from './walker.js';

/** Entries in a page-modification log (one 4 KiB page of 64-bit entries). */
export const PML_ENTRIES = 512;

export class PmlLog {
  /** The log page: guest-physical addresses, 4 KiB aligned (below 2^52, exact as floats). */
  readonly gpas = new Float64Array(PML_ENTRIES);
  /** The PML index: the next entry to use; 0xffff once the log is full. */
  index = PML_ENTRIES - 1;
  /** Counters: addresses logged, log-full events. */
  logged = 0;
  fullEvents = 0;

  /** Is the index outside 0..511 (the next A/D flag update makes a log-full exit)? */
  get full(): boolean {
    return this.index >= PML_ENTRIES;
  }

  /** Log `gpa` (its 4 KiB page): the CPU has just set an EPT dirty flag from 0 to 1. */
  log(gpa: number): void {
    this.gpas[this.index] = Math.floor(gpa / 4096) * 4096;
    this.index = this.index === 0 ? 0xffff : this.index - 1;
    this.logged++;
  }

  /** The logged addresses, oldest first, and an empty log (index 511) after: the host's drain. */
  drain(): number[] {
    const first = this.full ? 0 : this.index + 1;
    const out: number[] = [];
    for (let i = PML_ENTRIES - 1; i >= first; i--) out.push(this.gpas[i] as number);
    this.index = PML_ENTRIES - 1;
    return out;
  }

  /** The gfns in the log now, without draining it (for the isolation checker). */
  *gfns(): Generator<number> {
    const first = this.full ? 0 : this.index + 1;
    for (let i = PML_ENTRIES - 1; i >= first; i--) yield (this.gpas[i] as number) / 4096;
  }
}

/**
 * Would committing `sub` (a stage-2 walk about to be used for an access,
 * `write` or not) set any EPT accessed or dirty flag? Those updates are what
 * the PML index is checked before (29.3.6).
 */
export function setsStage2Flag(sub: WalkResult, fmt: WalkFormat, write: boolean): boolean {
  const a = fmt.accessedBit;
  if (a === 0) return false;
  for (let i = 0; i < sub.n; i++) if ((sub.loAt(i) & a) === 0) return true;
  return write && (sub.loAt(sub.n - 1) & fmt.dirtyBit) === 0;
}
