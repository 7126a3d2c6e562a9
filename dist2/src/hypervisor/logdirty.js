/**
 * Log-dirty mode, the domain's (Xen's d->arch.paging.log_dirty, paging.c):
 * which guest frames were written since the log was last cleaned, for live
 * migration. The log belongs to the domain; how writes are made to show up
 * is the pager's business, through the three operations it registers at
 * attach (Xen's paging_log_dirty_init): the shadow pager maps frames
 * read-only until they are logged (shadow/common.c), a nested pager would
 * give them the p2m type ram_logdirty (hap.c) — Xen's shadow mode never
 * uses that type.
 *
 * Rules kept here: the log is a bitmap plus the list of frames set since the
 * last clean (so a clean costs what was dirtied, not the guest's size);
 * every write the hypervisor makes for the guest (emulation, flag updates)
 * and every device write is marked by whoever makes it (paging_mark_dirty).
 */
export class LogDirty {
    ramFrames;
    /** One byte per guest frame, 1 = written since the last clean (null: log-dirty mode off). */
    bitmap = null;
    list = [];
    ops = null;
    constructor(ramFrames) {
        this.ramFrames = ramFrames;
    }
    /** The pager's operations (null: it cannot track writes; bare metal cannot). */
    register(ops) {
        this.ops = ops;
    }
    /** Can this domain's pager run log-dirty mode? */
    get supported() {
        return this.ops !== null;
    }
    get on() {
        return this.bitmap !== null;
    }
    /** Is `gfn` logged dirty (so writes to it need not be seen again until the next clean)? */
    isDirty(gfn) {
        return this.bitmap !== null && this.bitmap[gfn] === 1;
    }
    /** Start logging (XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY). */
    enable() {
        if (this.ops === null)
            throw new Error('log-dirty mode: the pager cannot track writes');
        this.bitmap = new Uint8Array(this.ramFrames);
        this.list = [];
        this.ops.enable();
    }
    /** The frames written since the last call, ascending; the log starts again empty (SHADOW_OP_CLEAN). */
    clean() {
        const d = this.bitmap;
        if (d === null)
            return [];
        const list = this.list.sort((a, b) => a - b);
        this.list = [];
        for (const gfn of list)
            d[gfn] = 0;
        this.ops?.clean(list);
        return list;
    }
    disable() {
        if (this.bitmap === null)
            return;
        this.bitmap = null;
        this.list = [];
        this.ops?.disable();
    }
    /** Record a write to `gfn` (paging_mark_dirty); true if it was clean until now. */
    mark(gfn) {
        const d = this.bitmap;
        if (d === null || gfn >= d.length || d[gfn] === 1)
            return false;
        d[gfn] = 1;
        this.list.push(gfn);
        return true;
    }
}
//# sourceMappingURL=logdirty.js.map