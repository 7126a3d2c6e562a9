export class DirtyLog {
    st;
    set;
    cache;
    log;
    constructor(st, set, cache) {
        this.st = st;
        this.set = set;
        this.cache = cache;
        this.log = st.domain.logDirty;
        if (st.sw.logdirty)
            this.log.register(this);
    }
    /** Is log-dirty mode on? */
    get on() {
        return this.log.on;
    }
    /** May a shadow leaf map `gfn` writable as far as the log is concerned? (Log-dirty off, or `gfn` logged dirty.) */
    writableOk(gfn) {
        return !this.log.on || this.log.isDirty(gfn);
    }
    /**
     * Log-dirty mode starts: every shadow mapping becomes read-only until its
     * page is dirtied, so the first write to each page after every clean is an
     * exit that records it. Writes of a vCPU running with paging off go
     * through the P2M unwatched: enable this only with paging on.
     */
    enable() {
        this.cache.blowTables();
    }
    /**
     * Frames just taken out of the log must trap their next write again. As
     * Xen's sh_clean_dirty_bitmap: blow the shadow tables, so every mapping
     * is rebuilt read-only unless logged dirty. With ldrevoke (Umbra's): make
     * each cleaned frame's writable mappings read-only through the reverse map.
     */
    clean(gfns) {
        this.st.counters['logdirty.cleans']++;
        if (!this.st.sw.ldrevoke) {
            this.cache.blowTables();
            return;
        }
        let flush = false;
        for (const gfn of gfns)
            if (this.set.revokeWrite(gfn))
                flush = true;
        if (flush)
            this.set.shootdown();
    }
    disable() { }
    markDirty(gfn) {
        if (this.log.mark(gfn))
            this.st.counters['logdirty.pages_dirtied']++;
    }
}
//# sourceMappingURL=logdirty.js.map