/**
 * Log-dirty mode (Xen's paging_log_dirty_*, the shadow side of
 * shadow/common.c): which guest frames were written since the log was last
 * cleaned, for live migration.
 *
 * Rules this module keeps (the isolation checker tests them):
 *  - in log-dirty mode a shadow leaf is writable only if its frame is logged
 *    dirty (propagate.ts asks isDirty), and no shadow superpage exists
 *    (writes are tracked per 4 KiB page);
 *  - enabling blows the shadow tables (every mapping is rebuilt under the
 *    rule above); cleaning revokes write access to every frame it un-logs,
 *    through the writer, so the next write to it exits and is logged again;
 *  - writes the hypervisor makes for the guest (emulation, A/D flags) and
 *    devices make (pwrite) are logged directly (markDirty, by the fault path).
 */
import type { ShadowCache } from './cache.js';
import type { ShadowSet } from './set.js';
import type { ShadowState } from './state.js';

export class DirtyLog {
  /** One byte per guest frame, 1 = written since the log was last cleaned (null: log-dirty mode off). */
  private bitmap: Uint8Array | null = null;
  private list: number[] = [];

  constructor(
    private readonly st: ShadowState,
    private readonly set: ShadowSet,
    private readonly cache: ShadowCache,
  ) {}

  /** Is log-dirty mode on? */
  get on(): boolean {
    return this.bitmap !== null;
  }

  /** May a shadow leaf map `gfn` writable as far as the log is concerned? (Log-dirty off, or `gfn` logged dirty.) */
  writableOk(gfn: number): boolean {
    return this.bitmap === null || this.bitmap[gfn] === 1;
  }

  /**
   * Start tracking writes to guest RAM (live migration): every shadow
   * mapping becomes read-only until its page is dirtied, so the first write
   * to each page after every clean is an exit that records it. Writes of a
   * vCPU running with paging off go through the P2M unwatched: enable this
   * only with paging on.
   */
  enable(): void {
    this.bitmap = new Uint8Array(this.st.domain.placement.ramFrames);
    this.list = [];
    this.cache.blowTables();
  }

  /** The frames written since the last call (ascending), which become write-protected again. */
  clean(): number[] {
    const d = this.bitmap;
    if (d === null) return [];
    this.st.counters['logdirty.cleans']++;
    const list = this.list.sort((a, b) => a - b);
    this.list = [];
    let flush = false;
    for (const gfn of list) {
      d[gfn] = 0;
      if (this.set.revokeWrite(gfn)) flush = true;
    }
    if (flush) this.set.shootdown();
    return list;
  }

  disable(): void {
    this.bitmap = null;
    this.list = [];
  }

  markDirty(gfn: number): void {
    const d = this.bitmap;
    if (d === null || gfn >= d.length || d[gfn] === 1) return;
    d[gfn] = 1;
    this.list.push(gfn);
    this.st.counters['logdirty.pages_dirtied']++;
  }
}
