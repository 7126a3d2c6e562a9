/**
 * A Linux-like guest kernel that runs on the simulated CPU and touches it
 * only through guest operations (the GuestPort), the way a real kernel does:
 * it boots with paging off and builds its tables in guest RAM, enables
 * paging, keeps a global large-page direct map of RAM, and from then on edits
 * every page-table entry with ordinary writes through that direct map,
 * followed by the INVLPG / CR3 reload / INVPCID / shootdown a real kernel
 * issues. Page faults reach it only as #PF delivered by the CPU.
 *
 * Host-side bookkeeping stands in for the kernel's own data structures
 * (struct page, VMAs, the run queues); page tables live only in guest memory.
 * Where Linux deliberately skips a flush (clearing accessed bits, permission
 * upgrades) this kernel flushes: a guest that relies on a stale TLB entry is
 * not well behaved, and its output would depend on TLB size (docs/kernel.md).
 *
 * This class is the façade that workloads, the runner, migration and tests
 * use; the kernel itself is the modules beside it (docs/kernel.md lists
 * them), each handed the shared KernelState explicitly.
 */
import { age } from './aging.js';
import { boot, initKernel } from './boot.js';
import { counterStats, KernelCounters } from './counters.js';
import { access } from './fault.js';
import { enterSyscall } from './kmem.js';
import { PROT_R, PROT_W, PROT_X } from './mm.js';
import { brk, mmap, mprotect, munmap } from './mmap.js';
import { clone, exec, exit, fork, spawn } from './process.js';
import { runTasks } from './sched.js';
import { ACCESS_FETCH, ACCESS_READ, ACCESS_WRITE, KernelState, LINES_PER_PAGE, Task, } from './state.js';
import { flush } from './tlb.js';
import { leakedFrames } from './verify.js';
export { fileWord } from './pages.js';
export { ACCESS_FETCH, ACCESS_READ, ACCESS_WRITE, KernelCounters, LINES_PER_PAGE, PROT_R, PROT_W, PROT_X, Task, };
export class Kernel {
    port;
    opts;
    k;
    layout;
    frames;
    counters;
    vcpus;
    initMm;
    tasks;
    exitTask = (t) => exit(this.k, t);
    constructor(port, opts) {
        this.port = port;
        this.opts = opts;
        const k = new KernelState(port, opts);
        initKernel(k);
        this.k = k;
        this.layout = k.layout;
        this.frames = k.frames;
        this.counters = k.counters;
        this.vcpus = k.vcpus;
        this.initMm = k.initMm;
        this.tasks = k.tasks;
    }
    /** Build the kernel's tables with paging off, then turn paging on in every vCPU. */
    boot() {
        boot(this.k);
    }
    /** Flush `mm`'s entries in [start, end) (everything if start < 0) wherever they may be cached. */
    flush(mm, start, end) {
        flush(this.k, mm, start, end);
    }
    /** Create the first user task (init) with an empty address space. */
    spawn(name, body) {
        return spawn(this.k, name, body);
    }
    /**
     * Run every task until all have exited: each vCPU in turn runs its next
     * runnable task for one time slice (the body runs until it yields).
     * With `untilOps`, stop (returning false) once the port has run that many
     * operations; run() again to go on. True when every task has exited.
     */
    run(onSlice, untilOps = Number.POSITIVE_INFINITY) {
        return runTasks(this.k, this.exitTask, onSlice, untilOps);
    }
    /** fork(): a copy of the parent's address space, private pages shared copy-on-write. */
    fork(parent, name, body) {
        return fork(this.k, parent, name, body);
    }
    /** A new thread of `parent` (shares its address space), placed on the least busy vCPU. */
    clone(parent, name, body) {
        return clone(this.k, parent, name, body);
    }
    /** exit(): tear the address space down (if this was its last user) and wake the parent. */
    exit(t) {
        exit(this.k, t);
    }
    /** A system call with no memory-management effect (read, write, ...): kernel entry only. */
    sys(t, name) {
        void t;
        enterSyscall(this.k, name);
    }
    /** mmap(): place an area top-down below the previous ones; pages come on demand. */
    mmap(t, bytes, prot, file = -1, pgoff = 0, name = 'anon') {
        return mmap(this.k, t, bytes, prot, file, pgoff, name);
    }
    /** munmap(): remove [start, start+bytes), free its pages and empty tables, flush. */
    munmap(t, start, bytes) {
        munmap(this.k, t, start, bytes);
    }
    /** mprotect(): change the rights of [start, end) and rewrite present entries. */
    mprotect(t, start, bytes, prot) {
        mprotect(this.k, t, start, bytes, prot);
    }
    /** brk(): move the end of the heap; shrinking unmaps. */
    brk(t, newEnd) {
        brk(this.k, t, newEnd);
    }
    /** execve(): a fresh address space for program `p`; the old one is torn down. */
    exec(t, p) {
        exec(this.k, t, p);
    }
    /**
     * A user-mode access by `t` (its vCPU must be current). Faults go to the
     * kernel's handler and the access is retried; returns false if the task
     * was killed instead (SIGSEGV).
     */
    access(t, kind, va, value = 0) {
        return access(this.k, t, kind, va, value);
    }
    /** Page aging: clear the accessed bits of up to `max` present pages of `mm` from `from` (see aging.ts). */
    age(mm, from, max) {
        return age(this.k, mm, from, max);
    }
    /** Frames the kernel holds beyond boot, the page cache and live processes (must be 0 when all exited). */
    leakedFrames() {
        return leakedFrames(this.k);
    }
    /** Counters as a flat record, names prefixed "guest.". */
    stats() {
        return counterStats(this.k.counters, this.k.frames);
    }
}
//# sourceMappingURL=kernel.js.map