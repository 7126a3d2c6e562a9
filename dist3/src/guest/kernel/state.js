/**
 * The guest kernel's shared structures: its options, tasks, per-vCPU state
 * and the one `KernelState` every part of the kernel is handed explicitly —
 * what Linux keeps in globals and per-CPU variables (init_mm, the run
 * queues, cpu_tlbstate, the zero page, the page cache index).
 *
 * Rules: this module holds data and constants, no behaviour that touches the
 * port; every other kernel module may import it, it imports none of them
 * (only the host-side bookkeeping in mm.ts, frames.ts, layout.ts).
 */
import { KernelCounters } from './counters.js';
import { FrameAllocator } from './frames.js';
import { layoutFor, spanOf } from './layout.js';
export const ACCESS_READ = 0;
export const ACCESS_WRITE = 1;
export const ACCESS_FETCH = 2;
/** Kernel entry points (offsets into kernel text) whose fetch marks each kernel entry. */
export const ENTRY_PAGE_FAULT = 0x1000;
export const ENTRY_SYSCALL = 0x2000;
export const ENTRY_IPI = 0x3000;
export const ENTRY_SCHEDULE = 0x4000;
/** Linux's TLB_NR_DYN_ASIDS: PCIDs per CPU handed out to recently run address spaces. */
export const DYN_PCIDS = 6;
/** User data is modelled at cache-line granularity: one 8-byte word per 64-byte line. */
export const LINES_PER_PAGE = 64;
export class Task {
    pid;
    mm;
    vcpu;
    name;
    state = 'runnable';
    body = null;
    waitingFor = null;
    killed = false;
    constructor(pid, mm, vcpu, name) {
        this.pid = pid;
        this.mm = mm;
        this.vcpu = vcpu;
        this.name = name;
    }
}
export class KernelState {
    port;
    opts;
    layout;
    frames;
    counters = new KernelCounters();
    vcpus = [];
    /** init_mm: the kernel's own tables (set up by boot.ts's startKernel). */
    initMm;
    /** Entries per table, per level. */
    entries;
    /** Bytes mapped by one entry, per level. */
    spans;
    pagingOn = false;
    zeroPage = 0;
    /** Page cache: (file, page) key -> frame. */
    pageCache = new Map();
    nextPid = 1;
    tasks = new Set();
    /** Frames in use once boot finished (tables, zero page): never freed. */
    bootFrames = 0;
    /** Kernel top-level entries [index, hi, lo] copied into every process's top table. */
    kernelTop = [];
    constructor(port, opts) {
        this.port = port;
        this.opts = opts;
        this.layout = layoutFor(opts.mode);
        const l = this.layout;
        const ram = port.machine.memory;
        if (ram < 64 * 2 ** 20)
            throw new RangeError('the guest kernel needs at least 64 MiB of RAM');
        if (ram > l.directLimit) {
            throw new RangeError(`${opts.mode} guests model low memory only: at most ${l.directLimit / 2 ** 20} MiB of RAM`);
        }
        this.entries = l.indexBits.map((b) => 2 ** b);
        this.spans = l.indexBits.map((_, level) => spanOf(l, level));
        // Firmware and the kernel image: the first 32 MiB.
        this.frames = new FrameAllocator(ram / 4096, (l.textGpa + 16 * 2 ** 20) / 4096);
        this.frames.reserve(0, (l.textGpa + 16 * 2 ** 20) / 4096 - 1);
    }
    get usePcid() {
        return this.opts.pcid && this.layout.long;
    }
}
//# sourceMappingURL=state.js.map