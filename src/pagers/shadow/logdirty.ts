/**
 * Log-dirty mode, the shadow pager's half (the shadow side of Xen's
 * shadow/common.c: sh_enable_log_dirty, sh_clean_dirty_bitmap): the log
 * itself is the domain's (hypervisor/logdirty.ts); this part makes every
 * first write to a clean frame exit, so the fault path can log it.
 *
 * Rules this module keeps (the isolation checker tests them):
 *  - in log-dirty mode a shadow leaf is writable only if its frame is logged
 *    dirty (propagate.ts asks writableOk), and no shadow superpage exists
 *    (writes are tracked per 4 KiB page);
 *  - enabling and cleaning blow the shadow tables (every mapping is rebuilt
 *    under the rule above), so the next write to a cleaned frame exits and
 *    is logged again; with ldrevoke, cleaning instead revokes write access
 *    to each frame it un-logs, through the writer and the reverse map;
 *  - writes the hypervisor makes for the guest (emulation, A/D flags) and
 *    devices make (pwrite) are logged directly (markDirty, by the fault path).
 */
import type { LogDirty, LogDirtyOps } from '../../hypervisor/logdirty.js';
import type { ShadowCache } from './cache.js';
import type { ShadowSet } from './set.js';
import type { ShadowState } from './state.js';

export class DirtyLog implements LogDirtyOps {
  private readonly log: LogDirty;

  constructor(
    private readonly st: ShadowState,
    private readonly set: ShadowSet,
    private readonly cache: ShadowCache,
  ) {
    this.log = st.domain.logDirty;
    if (st.sw.logdirty) this.log.register(this);
  }

  /** Is log-dirty mode on? */
  get on(): boolean {
    return this.log.on;
  }

  /** May a shadow leaf map `gfn` writable as far as the log is concerned? (Log-dirty off, or `gfn` logged dirty.) */
  writableOk(gfn: number): boolean {
    return !this.log.on || this.log.isDirty(gfn);
  }

  /**
   * Log-dirty mode starts: every shadow mapping becomes read-only until its
   * page is dirtied, so the first write to each page after every clean is an
   * exit that records it. Writes of a vCPU running with paging off go
   * through the P2M unwatched: enable this only with paging on.
   */
  enable(): void {
    this.cache.blowTables();
  }

  /**
   * Frames just taken out of the log must trap their next write again. As
   * Xen's sh_clean_dirty_bitmap: blow the shadow tables, so every mapping
   * is rebuilt read-only unless logged dirty. With ldrevoke (Umbra's): make
   * each cleaned frame's writable mappings read-only through the reverse map.
   */
  clean(gfns: readonly number[]): void {
    this.st.counters['logdirty.cleans']++;
    if (!this.st.sw.ldrevoke) {
      this.cache.blowTables();
      return;
    }
    let flush = false;
    for (const gfn of gfns) if (this.set.revokeWrite(gfn)) flush = true;
    if (flush) this.set.shootdown();
  }

  disable(): void {}

  markDirty(gfn: number): void {
    if (this.log.mark(gfn)) this.st.counters['logdirty.pages_dirtied']++;
  }
}
