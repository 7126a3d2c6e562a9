/**
 * Log-dirty mode, the domain's (Xen's d->arch.paging.log_dirty, paging.c):
 * which guest frames were written since the log was last cleaned, for live
 * migration. The log belongs to the domain; how writes are made to show up
 * is the pager's business, through the three operations it registers at
 * attach (Xen's paging_log_dirty_init): the shadow pager maps frames
 * read-only until they are logged (shadow/common.c), the nested pager gives
 * them the p2m type ram_logdirty (hap.c), write-protected or logged by PML
 * (nested/logdirty.ts) — Xen's shadow mode never uses that type.
 *
 * Rules kept here: the log is a bitmap plus the list of frames set since the
 * last clean (so a clean costs what was dirtied, not the guest's size);
 * every write the hypervisor makes for the guest (emulation, flag updates)
 * and every device write is marked by whoever makes it (paging_mark_dirty).
 */

/** How a pager makes guest writes visible to the log (Xen's log_dirty ops). */
export interface LogDirtyOps {
  /** Log-dirty mode starts: from now on every first write to a clean frame must reach mark(). */
  enable(): void;
  /** These frames were just taken out of the log: their next write must reach mark() again. */
  clean(gfns: readonly number[]): void;
  disable(): void;
  /**
   * Bring into the log what the hardware holds of it (Xen's
   * p2m_flush_hardware_cached_dirty: every vCPU's PML buffer), before the
   * log is read or cleaned (paging_log_dirty_op).
   */
  flush?(): void;
  /** Are writes of vCPUs running with paging off seen too (nested paging: they go through stage 2)? */
  readonly pagingOffTracked?: boolean;
}

export class LogDirty {
  /** One byte per guest frame, 1 = written since the last clean (null: log-dirty mode off). */
  private bitmap: Uint8Array | null = null;
  private list: number[] = [];
  private ops: LogDirtyOps | null = null;

  constructor(private readonly ramFrames: number) {}

  /** The pager's operations (null: it cannot track writes; bare metal cannot). */
  register(ops: LogDirtyOps | null): void {
    this.ops = ops;
  }

  /** Can this domain's pager run log-dirty mode? */
  get supported(): boolean {
    return this.ops !== null;
  }

  get on(): boolean {
    return this.bitmap !== null;
  }

  /** Does the pager see writes of vCPUs running with paging off? */
  get pagingOffTracked(): boolean {
    return this.ops?.pagingOffTracked === true;
  }

  /** Is `gfn` logged dirty (so writes to it need not be seen again until the next clean)? */
  isDirty(gfn: number): boolean {
    return this.bitmap !== null && this.bitmap[gfn] === 1;
  }

  /** Start logging (XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY). */
  enable(): void {
    if (this.ops === null) throw new Error('log-dirty mode: the pager cannot track writes');
    this.bitmap = new Uint8Array(this.ramFrames);
    this.list = [];
    this.ops.enable();
  }

  /** The frames written since the last call, ascending; the log starts again empty (SHADOW_OP_CLEAN). */
  clean(): number[] {
    const d = this.bitmap;
    if (d === null) return [];
    this.ops?.flush?.();
    const list = this.list.sort((a, b) => a - b);
    this.list = [];
    for (const gfn of list) d[gfn] = 0;
    this.ops?.clean(list);
    return list;
  }

  disable(): void {
    if (this.bitmap === null) return;
    this.ops?.flush?.();
    this.bitmap = null;
    this.list = [];
    this.ops?.disable();
  }

  /** Record a write to `gfn` (paging_mark_dirty); true if it was clean until now. */
  mark(gfn: number): boolean {
    const d = this.bitmap;
    if (d === null || gfn >= d.length || d[gfn] === 1) return false;
    d[gfn] = 1;
    this.list.push(gfn);
    return true;
  }
}
