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
 */

import {
  CR0_ET,
  CR0_PE,
  CR0_PG,
  CR0_WP,
  CR4_LA57,
  CR4_PAE,
  CR4_PCIDE,
  CR4_PGE,
  CR4_PSE,
  CR4_SMAP,
  CR4_SMEP,
  EFER_LME,
  EFER_NXE,
  PF_ID,
  PF_P,
  PF_RSVD,
  PF_W,
  PTE_A,
  PTE_D,
  PTE_G,
  PTE_P,
  PTE_PS,
  PTE_RW,
  PTE_US,
  XD_HI,
} from '../../arch/x86/bits.js';
import { FAULT_GP, FAULT_PF } from '../../arch/x86/cpu.js';
import type { GuestPort } from '../port.js';
import { FRAMES_PER_HUGE, FrameAllocator, OutOfMemory } from './frames.js';
import { type KernelLayout, type KernelMode, layoutFor, spanOf } from './layout.js';
import { Mm, PROT_R, PROT_W, PROT_X, TableNode, type Vma } from './mm.js';

export interface KernelOptions {
  mode: KernelMode;
  /** Tag address spaces with PCIDs (long modes only), like Linux on CPUs with PCID. */
  pcid: boolean;
  /** Transparent huge pages for large anonymous areas. */
  thp: boolean;
  /** Check every user read against the value the process last wrote (tests). */
  verify: boolean;
}

const ACCESS_READ = 0;
const ACCESS_WRITE = 1;
const ACCESS_FETCH = 2;
export type Access = 0 | 1 | 2;
export { ACCESS_FETCH, ACCESS_READ, ACCESS_WRITE };

/** Kernel entry points (offsets into kernel text) whose fetch marks each kernel entry. */
const ENTRY_PAGE_FAULT = 0x1000;
const ENTRY_SYSCALL = 0x2000;
const ENTRY_IPI = 0x3000;
const ENTRY_SCHEDULE = 0x4000;

/** Linux's tlb_single_page_flush_ceiling: above this many pages a range flush flushes everything. */
const FLUSH_CEILING = 33;
/** Linux's TLB_NR_DYN_ASIDS: PCIDs per CPU handed out to recently run address spaces. */
const DYN_PCIDS = 6;
/** Linux's initial stack area (setup_arg_pages expands it by 128 KiB) and stack limit. */
const STACK_INITIAL = 128 * 1024;
const STACK_LIMIT = 8 * 2 ** 20;
/** User data is modelled at cache-line granularity: one 8-byte word per 64-byte line. */
export const LINES_PER_PAGE = 64;

export type TaskBody = Generator<Yield, void, void>;
/** What a task's body yields: end of its time slice, or a wait for a child's exit. */
export type Yield = undefined | { wait: Task };

export class Task {
  state: 'runnable' | 'blocked' | 'dead' = 'runnable';
  body: TaskBody | null = null;
  waitingFor: Task | null = null;
  killed = false;
  constructor(
    readonly pid: number,
    public mm: Mm,
    readonly vcpu: number,
    public name: string,
  ) {}
}

interface VcpuState {
  current: Task | null;
  loadedMm: Mm;
  pcidMm: Array<Mm | null>;
  pcidGen: number[];
  nextPcid: number;
  queue: Task[];
}

export class KernelCounters {
  processes = 0;
  threads = 0;
  exits = 0;
  kills = 0;
  execs = 0;
  contextSwitches = 0;
  cr3Switches = 0;
  pageFaults = 0;
  faultWrite = 0;
  faultFetch = 0;
  faultDemandZero = 0;
  faultZeroPage = 0;
  faultFile = 0;
  faultCow = 0;
  faultCowReuse = 0;
  faultStackGrowth = 0;
  faultHuge = 0;
  faultSpurious = 0;
  faultSegv = 0;
  syscalls: Record<string, number> = {};
  shootdownIpis = 0;
  flushesLocal = 0;
  flushesFull = 0;
  tablesAllocated = 0;
  tablesFreed = 0;
  pteWrites = 0;
  pteReads = 0;
  pageCacheFills = 0;
  agedYoung = 0;
  userAccesses = 0;
}

export class Kernel {
  readonly layout: KernelLayout;
  readonly frames: FrameAllocator;
  readonly counters = new KernelCounters();
  readonly vcpus: VcpuState[] = [];
  readonly initMm: Mm;
  private readonly entries: number[];
  /** Bytes mapped by one entry, per level. */
  private readonly spans: number[];
  private pagingOn = false;
  private zeroPage = 0;
  private readonly pageCache = new Map<number, number>();
  private nextPid = 1;
  readonly tasks = new Set<Task>();
  private bootFrames = 0;
  /** Kernel top-level entries (index -> [hi, lo]) copied into every process's top table. */
  private readonly kernelTop: Array<[number, number, number]> = [];

  constructor(
    readonly port: GuestPort,
    readonly opts: KernelOptions,
  ) {
    this.layout = layoutFor(opts.mode);
    const l = this.layout;
    const ram = port.machine.memory;
    if (ram < 64 * 2 ** 20) throw new RangeError('the guest kernel needs at least 64 MiB of RAM');
    if (ram > l.directLimit) {
      throw new RangeError(`${opts.mode} guests model low memory only: at most ${l.directLimit / 2 ** 20} MiB of RAM`);
    }
    this.entries = l.indexBits.map((b) => 2 ** b);
    this.spans = l.indexBits.map((_, level) => spanOf(l, level));
    // Firmware and the kernel image: the first 32 MiB.
    this.frames = new FrameAllocator(ram / 4096, (l.textGpa + 16 * 2 ** 20) / 4096);
    this.frames.reserve(0, (l.textGpa + 16 * 2 ** 20) / 4096 - 1);
    this.initMm = new Mm(this.newTable(0), l.mmapBase);
    for (let v = 0; v < port.cpus.length; v++) {
      this.vcpus.push({
        current: null,
        loadedMm: this.initMm,
        pcidMm: new Array(DYN_PCIDS).fill(null),
        pcidGen: new Array(DYN_PCIDS).fill(0),
        nextPcid: 0,
        queue: [],
      });
    }
  }

  private get usePcid(): boolean {
    return this.opts.pcid && this.layout.long;
  }

  // ---- guest-physical access through the direct map (or physically, before paging) ----

  private kread(gpa: number, size: number): void {
    const hiLo = this.kva(gpa);
    const r = this.port.read(hiLo[0], hiLo[1], size, 0);
    if (r !== 0) this.bug(r, `kernel read of ${gpa.toString(16)}`);
  }

  private kwrite(gpa: number, size: number, hi: number, lo: number): void {
    const hiLo = this.kva(gpa);
    const r = this.port.write(hiLo[0], hiLo[1], size, hi, lo, 0);
    if (r !== 0) this.bug(r, `kernel write of ${gpa.toString(16)}`);
  }

  private readonly va2: [number, number] = [0, 0];
  private kva(gpa: number): [number, number] {
    const l = this.layout;
    const ghi = Math.floor(gpa / 2 ** 32);
    const glo = gpa >>> 0;
    if (!this.pagingOn) {
      this.va2[0] = ghi;
      this.va2[1] = glo;
    } else {
      this.va2[0] = l.directHi + ghi;
      this.va2[1] = (l.directLo + glo) >>> 0;
    }
    return this.va2;
  }

  private bug(r: number, what: string): never {
    const c = this.port.cpu;
    const why = r === FAULT_PF ? `#PF error ${c.faultError.toString(16)}` : r === FAULT_GP ? '#GP' : `status ${r}`;
    throw new Error(`guest kernel bug: ${what} took ${why}`);
  }

  private entryGpa(t: TableNode, i: number): number {
    return t.gfn * 4096 + i * this.layout.entrySize;
  }

  private readEntry(t: TableNode, i: number): void {
    this.counters.pteReads++;
    this.kread(this.entryGpa(t, i), this.layout.entrySize);
  }

  private writeEntry(t: TableNode, i: number, hi: number, lo: number): void {
    this.counters.pteWrites++;
    this.kwrite(this.entryGpa(t, i), this.layout.entrySize, this.layout.entrySize === 8 ? hi : 0, lo);
  }

  /** An entry pointing at `gfn` with `flags` (low) and `hiFlags` (e.g. XD). */
  private entry(gfn: number, flags: number, hiFlags: number): [number, number] {
    return [
      this.layout.entrySize === 8 ? (Math.floor(gfn / 0x100000) | hiFlags) >>> 0 : 0,
      ((gfn << 12) | flags) >>> 0,
    ];
  }

  /** Flags of an entry pointing at a lower table. PAE PDPTEs take only P. */
  private tableFlags(level: number, user: boolean): number {
    if (this.layout.mode === 'pae' && level === 0) return PTE_P;
    return PTE_P | PTE_RW | PTE_A | (user ? PTE_US : 0);
  }

  private newTable(level: number): TableNode {
    const leaf = level === this.layout.indexBits.length - 1;
    const { gfn, clean } = this.frames.alloc(true);
    this.counters.tablesAllocated++;
    const n = new TableNode(gfn, level, 2 ** (this.layout.indexBits[level] as number), leaf);
    if (!clean) this.clearFrame(gfn, true);
    return n;
  }

  /** clear_page: every entry for a table; one word per cache line for data (all the model ever writes). */
  private clearFrame(gfn: number, table: boolean): void {
    const step = table ? this.layout.entrySize : 4096 / LINES_PER_PAGE;
    const size = table ? this.layout.entrySize : 8;
    for (let off = 0; off < 4096; off += step) this.kwrite(gfn * 4096 + off, size, 0, 0);
  }

  // ---- boot ----

  /** Build the kernel's tables with paging off, then turn paging on in every vCPU. */
  boot(): void {
    const l = this.layout;
    const p = this.port;
    const ram = p.machine.memory;
    const root = this.initMm.root;
    // Direct map: large pages at directLevel, global, no execute (except the kernel image on 32-bit).
    const span = spanOf(l, l.directLevel);
    const dmNode = this.kernelPath(root, l.directHi, l.directLo, l.directLevel);
    const first = this.kindex(l.directHi, l.directLo, l.directLevel);
    for (let k = 0; k * span < ram; k++) {
      const gpa = k * span;
      const inImage = !l.long && gpa < l.textGpa + 16 * 2 ** 20 && gpa + span > l.textGpa;
      const [hi, lo] = this.entry(
        gpa / 4096,
        PTE_P | PTE_RW | PTE_A | PTE_D | PTE_PS | PTE_G,
        l.nx && !inImage ? XD_HI : 0,
      );
      this.writeEntry(dmNode, first + k, hi, lo);
      (dmNode.kids as Array<TableNode | number | null>)[first + k] = gpa / 4096;
    }
    if (l.long) {
      // Kernel text: 16 MiB of 2 MiB global read-only executable pages.
      const pd = this.kernelPath(root, l.textHi, l.textLo, l.indexBits.length - 2);
      const base = this.kindex(l.textHi, l.textLo, l.indexBits.length - 2);
      for (let k = 0; k < 8; k++) {
        const [hi, lo] = this.entry(l.textGpa / 4096 + k * 512, PTE_P | PTE_A | PTE_PS | PTE_G, 0);
        this.writeEntry(pd, base + k, hi, lo);
        (pd.kids as Array<TableNode | number | null>)[base + k] = l.textGpa / 4096 + k * 512;
      }
    }
    // Remember the kernel half of the top table, to copy into every process.
    const kids = root.kids as Array<TableNode | number | null>;
    for (let i = l.kernelFirstTop; i < kids.length; i++) {
      const k = kids[i];
      if (k instanceof TableNode) this.kernelTop.push([i, ...this.entry(k.gfn, this.tableFlags(0, false), 0)]);
      else if (typeof k === 'number') {
        this.kernelTop.push([
          i,
          ...this.entry(k, PTE_P | PTE_RW | PTE_A | PTE_D | PTE_PS | PTE_G, 0), // 32-bit direct map: no NX
        ]);
      }
    }
    this.zeroPage = this.frames.alloc(true).gfn;
    this.bootFrames = this.frames.inUse;
    for (let v = 0; v < p.cpus.length; v++) {
      if (v !== 0) p.selectCpu(v);
      this.enablePaging();
    }
    if (p.cpus.length > 1) p.selectCpu(0);
  }

  private enablePaging(): void {
    const l = this.layout;
    const p = this.port;
    const cr4 = (l.pae ? CR4_PAE : CR4_PSE) | (l.la57 ? CR4_LA57 : 0);
    this.ok(p.wrcr(4, 0, cr4), 'CR4');
    if (l.nx || l.long) this.ok(p.wrmsrEfer(0, (l.long ? EFER_LME : 0) | (l.nx ? EFER_NXE : 0)), 'EFER');
    this.ok(p.wrcr(3, 0, this.initMm.root.gfn * 4096), 'CR3');
    this.ok(p.wrcr(0, 0, (CR0_PG | CR0_WP | CR0_ET | CR0_PE) >>> 0), 'CR0');
    this.pagingOn = true;
    const more = CR4_PGE | CR4_SMEP | CR4_SMAP | (this.usePcid ? CR4_PCIDE : 0);
    this.ok(p.wrcr(4, 0, cr4 | more), 'CR4');
  }

  private ok(r: number, what: string): void {
    if (r !== 0) this.bug(r, `write to ${what}`);
  }

  /** Index of a kernel address (hi, lo) at `level`. */
  private kindex(hi: number, lo: number, level: number): number {
    const l = this.layout;
    let shift = 12;
    for (let i = level + 1; i < l.indexBits.length; i++) shift += l.indexBits[i] as number;
    const mask = 2 ** (l.indexBits[level] as number) - 1;
    if (shift >= 32) return (hi >>> (shift - 32)) & mask;
    return ((lo >>> shift) | (shift === 0 ? 0 : hi << (32 - shift))) & mask;
  }

  /** The table at `level` for a kernel address, creating tables above it (boot only). */
  private kernelPath(root: TableNode, hi: number, lo: number, level: number): TableNode {
    let t = root;
    for (let lv = 0; lv < level; lv++) {
      const i = this.kindex(hi, lo, lv);
      const kids = t.kids as Array<TableNode | number | null>;
      let k = kids[i];
      if (!(k instanceof TableNode)) {
        k = this.newTable(lv + 1);
        kids[i] = k;
        const [eh, el] = this.entry(k.gfn, this.tableFlags(lv, false), 0);
        this.writeEntry(t, i, eh, el);
      }
      t = k;
    }
    return t;
  }

  // ---- address spaces ----

  /** pgd_alloc: a top table holding the kernel half; PAE preallocates its three user PDs. */
  private newMm(): Mm {
    const l = this.layout;
    const root = this.newTable(0);
    for (const [i, hi, lo] of this.kernelTop) {
      this.writeEntry(root, i, hi, lo);
      (root.kids as Array<TableNode | number | null>)[i] = (this.initMm.root.kids as Array<TableNode | number | null>)[
        i
      ] as TableNode | number;
    }
    if (l.mode === 'pae') {
      for (let i = 0; i < 3; i++) {
        const pd = this.newTable(1);
        (root.kids as Array<TableNode | number | null>)[i] = pd;
        const [hi, lo] = this.entry(pd.gfn, PTE_P, 0);
        this.writeEntry(root, i, hi, lo);
      }
    }
    return new Mm(root, l.mmapBase);
  }

  /** The leaf table for a user address (see tableAt). */
  private leafFor(mm: Mm, va: number, walk = false): TableNode | null {
    return this.tableAt(mm, va, this.entries.length - 1, walk);
  }

  private leafIndex(va: number): number {
    return Math.floor(va / 4096) % (this.entries[this.entries.length - 1] as number);
  }

  private userFlags(a: Vma, writable: boolean, dirty: boolean): [number, number] {
    const lo = PTE_P | PTE_US | PTE_A | (writable ? PTE_RW : 0) | (dirty ? PTE_D : 0);
    return [lo, this.layout.nx && (a.prot & PROT_X) === 0 ? XD_HI : 0];
  }

  private setPte(leaf: TableNode, va: number, gfn: number, flags: [number, number]): void {
    const i = this.leafIndex(va);
    const [hi, lo] = this.entry(gfn, flags[0], flags[1]);
    this.writeEntry(leaf, i, hi, lo);
    leaf.mark(i, true);
  }

  /** Frame and flags of the last entry read (the value of the port's last read). */
  private lastEntry(): { gfn: number; lo: number; hi: number } {
    const c = this.port.cpu;
    const lo = c.valueLo;
    const hi = this.layout.entrySize === 8 ? c.valueHi : 0;
    return { gfn: (hi & 0xfffff) * 0x100000 + (lo >>> 12), lo, hi };
  }

  // ---- TLB maintenance ----

  /**
   * After changing entries of `mm` in [start, end) (or everything, if start < 0):
   * invalidate on every vCPU that has `mm` loaded (this one directly, the
   * others by IPI), and let the rest catch up at their next switch to it.
   */
  flush(mm: Mm, start: number, end: number): void {
    mm.tlbGen++;
    const pages = start < 0 ? Number.POSITIVE_INFINITY : (end - start) / 4096;
    this.onCpusRunning(mm, (st) => {
      if (pages <= FLUSH_CEILING) {
        for (let va = start; va < end; va += 4096)
          this.ok(this.port.invlpg(Math.floor(va / 2 ** 32), va >>> 0), 'INVLPG');
        this.counters.flushesLocal++;
      } else {
        this.flushAllUser();
        this.counters.flushesFull++;
      }
      const slot = st.pcidMm.indexOf(mm);
      if (slot >= 0) st.pcidGen[slot] = mm.tlbGen;
    });
  }

  /**
   * Run `fn` on every vCPU that has `mm` loaded: on this one directly, on the
   * others by IPI (Linux's on_each_cpu_mask over mm_cpumask).
   */
  private onCpusRunning(mm: Mm, fn: (st: VcpuState) => void): void {
    const here = this.port.cpu.index;
    for (let v = 0; v < this.vcpus.length; v++) {
      const st = this.vcpus[v] as VcpuState;
      if (st.loadedMm !== mm) continue;
      if (v !== here) {
        this.port.selectCpu(v);
        this.kfetch(ENTRY_IPI);
        this.counters.shootdownIpis++;
      }
      fn(st);
      if (v !== here) this.port.selectCpu(here);
    }
  }

  private flushAllUser(): void {
    const p = this.port;
    const c = p.cpu;
    if (this.usePcid) this.ok(p.invpcid(1, c.cr3Lo & 0xfff, 0, 0), 'INVPCID');
    else this.ok(p.wrcr(3, c.cr3Hi, c.cr3Lo), 'CR3');
  }

  /** switch_mm: load `mm` on the current vCPU, reusing its PCID when the vCPU is up to date with it. */
  private switchMm(mm: Mm): void {
    const st = this.vcpus[this.port.cpu.index] as VcpuState;
    if (st.loadedMm === mm) return;
    st.loadedMm = mm;
    this.counters.cr3Switches++;
    const base = mm.root.gfn * 4096;
    if (!this.usePcid || mm === this.initMm) {
      this.ok(this.port.wrcr(3, Math.floor(base / 2 ** 32), base >>> 0), 'CR3');
      return;
    }
    let slot = st.pcidMm.indexOf(mm);
    let noFlush = false;
    if (slot >= 0 && st.pcidGen[slot] === mm.tlbGen) noFlush = true;
    else if (slot < 0) {
      slot = st.nextPcid;
      st.nextPcid = (slot + 1) % DYN_PCIDS;
      st.pcidMm[slot] = mm;
    }
    st.pcidGen[slot] = mm.tlbGen;
    const hi = Math.floor(base / 2 ** 32) | (noFlush ? 0x80000000 : 0);
    this.ok(this.port.wrcr(3, hi >>> 0, (base + slot + 1) >>> 0), 'CR3');
  }

  private kfetch(entry: number): void {
    const l = this.layout;
    const r = this.port.fetch(l.textHi, (l.textLo + entry) >>> 0, 0);
    if (r !== 0) this.bug(r, 'kernel instruction fetch');
  }

  // ---- tasks and scheduling ----

  /** Create the first user task (init) on vCPU 0 with an empty address space. */
  spawn(name: string, body: (t: Task) => TaskBody): Task {
    const t = new Task(this.nextPid++, this.newMm(), this.pickVcpu(), name);
    t.mm.expected = this.opts.verify ? new Map() : null;
    this.counters.processes++;
    this.start(t, body);
    return t;
  }

  private pickVcpu(): number {
    let best = 0;
    for (let v = 1; v < this.vcpus.length; v++) {
      if ((this.vcpus[v] as VcpuState).queue.length < (this.vcpus[best] as VcpuState).queue.length) best = v;
    }
    return best;
  }

  private start(t: Task, body: (t: Task) => TaskBody): void {
    t.body = body(t);
    this.tasks.add(t);
    (this.vcpus[t.vcpu] as VcpuState).queue.push(t);
  }

  /**
   * Run every task until all have exited: each vCPU in turn runs its next
   * runnable task for one time slice (the body runs until it yields).
   * With `untilOps`, stop (returning false) once the port has run that many
   * operations; run() again to go on. True when every task has exited.
   */
  run(onSlice?: () => void, untilOps = Number.POSITIVE_INFINITY): boolean {
    for (;;) {
      if (this.port.ops >= untilOps) return false;
      let ran = false;
      let alive = false;
      for (let v = 0; v < this.vcpus.length; v++) {
        const st = this.vcpus[v] as VcpuState;
        if (st.queue.length === 0) continue;
        alive = true;
        const t = this.nextRunnable(st);
        if (t === null) continue;
        ran = true;
        this.runSlice(v, t);
        onSlice?.();
      }
      if (!alive) return true;
      if (!ran) throw new Error('guest kernel: every task is blocked (deadlock in the workload)');
    }
  }

  private nextRunnable(st: VcpuState): Task | null {
    for (let k = 0; k < st.queue.length; k++) {
      const t = st.queue.shift() as Task;
      st.queue.push(t);
      if (t.state === 'runnable') return t;
    }
    return null;
  }

  private runSlice(v: number, t: Task): void {
    const p = this.port;
    if (p.cpu.index !== v) p.selectCpu(v);
    const st = this.vcpus[v] as VcpuState;
    if (st.current !== t) {
      this.kfetch(ENTRY_SCHEDULE);
      this.counters.contextSwitches++;
      st.current = t;
      this.switchMm(t.mm);
    }
    const r = (t.body as TaskBody).next();
    if (t.state === 'dead') return;
    if (r.done === true || t.killed) {
      this.exit(t);
      return;
    }
    const y = r.value;
    if (y !== undefined && y.wait.state !== 'dead') {
      t.state = 'blocked';
      t.waitingFor = y.wait;
    }
  }

  /** fork(): a copy of the parent's address space, private pages shared copy-on-write. */
  fork(parent: Task, name: string, body: (t: Task) => TaskBody): Task {
    this.syscall('fork');
    const pm = parent.mm;
    const mm = this.newMm();
    mm.vmas = pm.vmas.map((a) => ({ ...a }));
    mm.brkStart = pm.brkStart;
    mm.brk = pm.brk;
    mm.mmapTop = pm.mmapTop;
    mm.expected = pm.expected === null ? null : new Map(pm.expected);
    let wrprotected = false;
    for (const a of pm.vmas) {
      // Like Linux, read-only file mappings are not copied: the child refaults them from the page cache.
      if (a.file >= 0 && (a.prot & PROT_W) === 0) continue;
      const cow = (a.prot & PROT_W) !== 0;
      this.forEachPresent(
        pm,
        a.start,
        a.end,
        (leaf, i, va) => {
          this.readEntry(leaf, i);
          const e = this.lastEntry();
          let lo = e.lo;
          if (cow && (lo & PTE_RW) !== 0) {
            lo &= ~PTE_RW;
            this.writeEntry(leaf, i, e.hi, lo >>> 0);
            wrprotected = true;
          }
          const child = this.leafFor(mm, va) as TableNode;
          // The child's copy starts old (pte_mkold), as in Linux's copy_present_pte.
          const clo = (lo & ~PTE_A) >>> 0;
          this.writeEntry(child, i, this.layout.entrySize === 8 ? e.hi : 0, clo);
          child.mark(i, true);
          this.getPage(e.gfn);
          mm.rss++;
        },
        (node, i, va) => {
          // A huge page: share it write-protected.
          const first = (node.kids as Array<TableNode | number | null>)[i] as number;
          this.readEntry(node, i);
          const e = this.lastEntry();
          const lo = cow ? (e.lo & ~PTE_RW) >>> 0 : e.lo;
          if (lo !== e.lo) {
            this.writeEntry(node, i, e.hi, lo);
            wrprotected = true;
          }
          const cnode = this.tableAt(mm, va, node.level) as TableNode;
          this.writeEntry(cnode, i, e.hi, lo);
          (cnode.kids as Array<TableNode | number | null>)[i] = first;
          cnode.used++;
          this.frames.getHuge(first);
          mm.rss += FRAMES_PER_HUGE;
        },
      );
    }
    if (wrprotected) this.flush(pm, -1, 0);
    const t = new Task(this.nextPid++, mm, this.pickVcpu(), name);
    this.counters.processes++;
    this.start(t, body);
    return t;
  }

  /** A new thread of `parent` (shares its address space), placed on the least busy vCPU. */
  clone(parent: Task, name: string, body: (t: Task) => TaskBody): Task {
    this.syscall('clone');
    parent.mm.users++;
    const t = new Task(this.nextPid++, parent.mm, this.pickVcpu(), name);
    this.counters.threads++;
    this.start(t, body);
    return t;
  }

  /**
   * The table at `level` on the path of user address `va`, creating missing
   * tables; null if a huge page maps the path above it. With `walk`, each
   * entry on the way is read first, as a fault handler's walk does.
   */
  private tableAt(mm: Mm, va: number, level: number, walk = false): TableNode | null {
    let t = mm.root;
    for (let lv = 0; lv < level; lv++) {
      const i = Math.floor(va / (this.spans[lv] as number)) % (this.entries[lv] as number);
      if (walk) this.readEntry(t, i);
      const kids = t.kids as Array<TableNode | number | null>;
      let k = kids[i];
      if (!(k instanceof TableNode)) {
        if (typeof k === 'number') return null;
        k = this.newTable(lv + 1);
        kids[i] = k;
        t.used++;
        const [hi, lo] = this.entry(k.gfn, this.tableFlags(lv, true), 0);
        this.writeEntry(t, i, hi, lo);
      }
      t = k;
    }
    return t;
  }

  /** Visit present leaf entries (and huge entries) of `mm` in [start, end). */
  private forEachPresent(
    mm: Mm,
    start: number,
    end: number,
    leafFn: (leaf: TableNode, i: number, va: number) => void,
    hugeFn: (node: TableNode, i: number, va: number) => void,
  ): void {
    const l = this.layout;
    const last = l.indexBits.length - 1;
    const visit = (t: TableNode, base: number): void => {
      const span = this.spans[t.level] as number;
      if (t.level === last) {
        if (t.used === 0) return;
        const n = this.entries[last] as number;
        for (let i = Math.max(0, Math.floor((start - base) / span)); i < n; i++) {
          const va = base + i * span;
          if (va >= end) break;
          if (t.isPresent(i)) leafFn(t, i, va);
        }
        return;
      }
      const kids = t.kids as Array<TableNode | number | null>;
      const top = t.level === 0 ? l.kernelFirstTop : kids.length;
      for (let i = Math.max(0, Math.floor((start - base) / span)); i < top; i++) {
        const va = base + i * span;
        if (va >= end) break;
        let k = kids[i];
        if (typeof k === 'number' && t.level > 0 && (va < start || va + span > end)) k = this.splitHuge(mm, t, i, va);
        if (k instanceof TableNode) visit(k, va);
        else if (typeof k === 'number') hugeFn(t, i, va);
      }
    };
    visit(mm.root, 0);
  }

  /**
   * Split a huge page into a table of 4 KiB entries with the same rights
   * (Linux's __split_huge_pmd), when an operation covers only part of it.
   * Other address spaces may keep mapping the block whole.
   */
  private splitHuge(mm: Mm, node: TableNode, i: number, va: number): TableNode {
    const kids = node.kids as Array<TableNode | number | null>;
    const first = kids[i] as number;
    this.readEntry(node, i);
    const e = this.lastEntry();
    const leaf = this.newTable(node.level + 1);
    const lo = (e.lo & 0xfff & ~PTE_PS) >>> 0;
    // Every small frame already carries the block's references (FrameAllocator.allocHuge).
    for (let p = 0; p < FRAMES_PER_HUGE; p++) {
      const [h, l] = this.entry(first + p, lo, e.hi & XD_HI);
      this.writeEntry(leaf, p, h, l);
      leaf.mark(p, true);
    }
    const [th, tl] = this.entry(leaf.gfn, this.tableFlags(node.level, true), 0);
    this.writeEntry(node, i, th, tl);
    kids[i] = leaf;
    this.flush(mm, va, va + spanOf(this.layout, node.level));
    return leaf;
  }

  /** exit(): tear the address space down (if this was its last user) and wake the parent. */
  exit(t: Task): void {
    if (t.state === 'dead') return;
    this.syscall('exit');
    t.state = 'dead';
    this.counters.exits++;
    const st = this.vcpus[t.vcpu] as VcpuState;
    if (this.port.cpu.index !== t.vcpu) this.port.selectCpu(t.vcpu);
    st.current = null;
    st.queue.splice(st.queue.indexOf(t), 1);
    this.tasks.delete(t);
    const mm = t.mm;
    if (--mm.users === 0) this.destroyMm(mm);
    for (const w of this.tasks) {
      if (w.state === 'blocked' && w.waitingFor === t) {
        w.state = 'runnable';
        w.waitingFor = null;
      }
    }
  }

  /**
   * Tear down every mapping and table of `mm` and free them. First every vCPU
   * still holding it in CR3 (the exiting one, or one that ran a thread of it
   * and kept it loaded, like Linux's lazy TLB mode) switches to the kernel's
   * own tables: a table must not be freed while a CR3 can reach it.
   */
  private destroyMm(mm: Mm): void {
    this.onCpusRunning(mm, () => this.switchMm(this.initMm));
    for (const a of mm.vmas) this.zap(mm, a.start, a.end);
    mm.vmas = [];
    this.freeTables(mm, mm.root, 0, 0, Number.POSITIVE_INFINITY, true);
    for (const st of this.vcpus) {
      const slot = st.pcidMm.indexOf(mm);
      if (slot >= 0) st.pcidMm[slot] = null;
      if (st.loadedMm === mm) throw new Error('guest kernel bug: freeing a loaded address space');
    }
  }

  /**
   * Free page tables of `mm` under `t` that map nothing in [start, end) and
   * lie outside every area; clear their entries in the parent first so that
   * freed tables are all zero. With `all`, the top table and kernel half go too.
   */
  private freeTables(mm: Mm, t: TableNode, base: number, start: number, end: number, all: boolean): boolean {
    const l = this.layout;
    const span = this.spans[t.level] as number;
    if (t.kids !== null) {
      const top = t.level === 0 ? l.kernelFirstTop : t.kids.length;
      for (let i = 0; i < top; i++) {
        const k = t.kids[i];
        if (!(k instanceof TableNode)) continue;
        const va = base + i * span;
        if (va + span <= start || va >= end) continue;
        // PAE keeps its three user PDs for the life of the address space.
        if (l.mode === 'pae' && t.level === 0 && !all) continue;
        if (this.freeTables(mm, k, va, start, end, all)) {
          this.writeEntry(t, i, 0, 0);
          t.kids[i] = null;
          t.used--;
        }
      }
    }
    if (t.level === 0) {
      if (!all) return false;
      for (const [i] of this.kernelTop) this.writeEntry(t, i, 0, 0);
      this.releaseTable(t);
      return true;
    }
    if (t.used !== 0 || mm.covers(base, base + span)) return false;
    this.releaseTable(t);
    return true;
  }

  private releaseTable(t: TableNode): void {
    this.frames.put(t.gfn, true);
    this.counters.tablesFreed++;
  }

  /** Unmap [start, end) within one area: clear the entries and drop the pages. */
  private zap(mm: Mm, start: number, end: number): void {
    this.forEachPresent(
      mm,
      start,
      end,
      (leaf, i) => {
        this.readEntry(leaf, i);
        const e = this.lastEntry();
        this.writeEntry(leaf, i, 0, 0);
        leaf.mark(i, false);
        this.putPage(e.gfn);
        mm.rss--;
      },
      (node, i) => {
        const first = (node.kids as Array<TableNode | number | null>)[i] as number;
        this.writeEntry(node, i, 0, 0);
        (node.kids as Array<TableNode | number | null>)[i] = null;
        node.used--;
        this.frames.putHuge(first);
        mm.rss -= FRAMES_PER_HUGE;
      },
    );
    if (mm.expected !== null) {
      for (const k of mm.expected.keys()) {
        const va = Math.floor(k / LINES_PER_PAGE) * 4096;
        if (va >= start && va < end) mm.expected.delete(k);
      }
    }
  }

  /** The zero page is shared by everyone and never freed: no reference counting. */
  private getPage(gfn: number): void {
    if (gfn !== this.zeroPage) this.frames.get(gfn);
  }

  private putPage(gfn: number): void {
    if (gfn === this.zeroPage) return;
    this.frames.put(gfn, false);
  }

  // ---- system calls ----

  private syscall(name: string): void {
    this.counters.syscalls[name] = (this.counters.syscalls[name] ?? 0) + 1;
    this.kfetch(ENTRY_SYSCALL);
  }

  /** A system call with no memory-management effect (read, write, ...): kernel entry only. */
  sys(t: Task, name: string): void {
    void t;
    this.syscall(name);
  }

  /** mmap(): place an area top-down below the previous ones; pages come on demand. */
  mmap(t: Task, bytes: number, prot: number, file = -1, pgoff = 0, name = 'anon'): number {
    this.syscall('mmap');
    const mm = t.mm;
    const len = Math.ceil(bytes / 4096) * 4096;
    // Like Linux, transparent huge pages only where a 2 MiB page exists (x86-64 and PAE).
    const huge = this.opts.thp && this.layout.mode !== '32-bit' && file < 0 && len >= 2 * 2 ** 20;
    // Huge-eligible areas are 2 MiB aligned, as Linux's THP-aware placement does.
    const start = this.findGap(mm, len, huge ? 2 * 2 ** 20 : 4096);
    mm.insert({ start, end: start + len, prot, file, pgoff, growsDown: false, huge, name });
    return start;
  }

  /** unmapped_area_topdown: the highest gap below the mmap base that fits `len` at `align`. */
  private findGap(mm: Mm, len: number, align: number): number {
    let top = mm.mmapTop;
    for (let k = mm.vmas.length - 1; k >= 0; k--) {
      const a = mm.vmas[k] as Vma;
      if (a.start >= top) continue;
      const start = Math.floor((top - len) / align) * align;
      if (start >= a.end) return start;
      top = Math.min(top, a.start);
    }
    const start = Math.floor((top - len) / align) * align;
    if (start < mm.brk + 2 ** 20) throw new OutOfMemory('out of virtual address space');
    return start;
  }

  /** munmap(): remove [start, start+bytes), free its pages and empty tables, flush. */
  munmap(t: Task, start: number, bytes: number): void {
    this.syscall('munmap');
    const mm = t.mm;
    const end = start + Math.ceil(bytes / 4096) * 4096;
    for (const a of mm.carve(start, end)) this.zap(mm, a.start, a.end);
    this.freeTables(mm, mm.root, 0, start, end, false);
    this.flush(mm, start, end);
  }

  /** mprotect(): change the rights of [start, end) and rewrite present entries. */
  mprotect(t: Task, start: number, bytes: number, prot: number): void {
    this.syscall('mprotect');
    const mm = t.mm;
    const end = start + Math.ceil(bytes / 4096) * 4096;
    const pieces = mm.carve(start, end);
    let changed = false;
    for (const a of pieces) {
      a.prot = prot;
      mm.insert(a);
      this.forEachPresent(
        mm,
        a.start,
        a.end,
        (leaf, i) => {
          this.readEntry(leaf, i);
          const e = this.lastEntry();
          // Only remove rights here; a later write fault grants write access (and breaks COW).
          let lo = e.lo;
          if ((prot & PROT_W) === 0) lo &= ~PTE_RW;
          lo >>>= 0;
          const hi = (this.layout.nx && (prot & PROT_X) === 0 ? e.hi | XD_HI : e.hi & ~XD_HI) >>> 0;
          if (lo !== e.lo || hi !== e.hi) {
            this.writeEntry(leaf, i, hi, lo);
            changed = true;
          }
        },
        (node, i) => {
          this.readEntry(node, i);
          const e = this.lastEntry();
          const lo = (prot & PROT_W) === 0 ? (e.lo & ~PTE_RW) >>> 0 : e.lo;
          const hi = this.layout.nx && (prot & PROT_X) === 0 ? (e.hi | XD_HI) >>> 0 : (e.hi & ~XD_HI) >>> 0;
          if (lo !== e.lo || hi !== e.hi) {
            this.writeEntry(node, i, hi, lo);
            changed = true;
          }
        },
      );
    }
    if (changed) this.flush(mm, start, end);
  }

  /** brk(): move the end of the heap; shrinking unmaps. */
  brk(t: Task, newEnd: number): void {
    this.syscall('brk');
    const mm = t.mm;
    const end = Math.ceil(newEnd / 4096) * 4096;
    const old = Math.ceil(mm.brk / 4096) * 4096;
    if (end > old) {
      const heap = mm.find(old - 1);
      if (heap !== undefined && heap.name === 'heap') heap.end = end;
      else
        mm.insert({
          start: old,
          end,
          prot: PROT_R | PROT_W,
          file: -1,
          pgoff: 0,
          growsDown: false,
          huge: false,
          name: 'heap',
        });
    } else if (end < old) {
      for (const a of mm.carve(end, old)) this.zap(mm, a.start, a.end);
      this.freeTables(mm, mm.root, 0, end, old, false);
      this.flush(mm, end, old);
    }
    mm.brk = newEnd;
  }

  /**
   * execve(): a fresh address space with the program's text and data (file
   * backed), bss, heap and stack; the arguments are written onto the stack
   * by the kernel; the old address space is torn down.
   */
  exec(t: Task, p: { file: number; textPages: number; dataPages: number; bssPages: number; name: string }): void {
    this.syscall('execve');
    this.counters.execs++;
    const l = this.layout;
    const old = t.mm;
    const mm = this.newMm();
    mm.expected = old.expected === null ? null : new Map();
    let va = l.textBase;
    const text = p.textPages * 4096;
    mm.insert({
      start: va,
      end: va + text,
      prot: PROT_R | PROT_X,
      file: p.file,
      pgoff: 0,
      growsDown: false,
      huge: false,
      name: 'text',
    });
    va += text;
    mm.insert({
      start: va,
      end: va + p.dataPages * 4096,
      prot: PROT_R | PROT_W,
      file: p.file,
      pgoff: p.textPages,
      growsDown: false,
      huge: false,
      name: 'data',
    });
    va += p.dataPages * 4096;
    mm.insert({
      start: va,
      end: va + p.bssPages * 4096,
      prot: PROT_R | PROT_W,
      file: -1,
      pgoff: 0,
      growsDown: false,
      huge: false,
      name: 'bss',
    });
    va += p.bssPages * 4096;
    mm.brkStart = mm.brk = va;
    const stackEnd = l.stackTop;
    mm.insert({
      start: stackEnd - STACK_INITIAL,
      end: stackEnd,
      prot: PROT_R | PROT_W,
      file: -1,
      pgoff: 0,
      growsDown: true,
      huge: false,
      name: 'stack',
    });
    // Arguments and environment: the kernel writes them onto the new stack's top page.
    const top = stackEnd - 4096;
    const { gfn, clean } = this.frames.alloc(false);
    if (!clean) this.clearFrame(gfn, false);
    for (let line = LINES_PER_PAGE - 8; line < LINES_PER_PAGE; line++) {
      const v = (t.pid * 64 + line) >>> 0;
      this.kwrite(gfn * 4096 + line * 64, 8, 0, v);
      mm.expected?.set((top / 4096) * LINES_PER_PAGE + line, v);
    }
    const leaf = this.leafFor(mm, top) as TableNode;
    this.setPte(leaf, top, gfn, this.userFlags(mm.find(top) as Vma, true, true));
    mm.rss++;
    t.mm = mm;
    t.name = p.name;
    this.switchMm(mm);
    if (--old.users === 0) this.destroyMm(old);
  }

  // ---- user accesses and the page-fault handler ----

  /**
   * A user-mode access by `t` (its vCPU must be current). Faults go to the
   * kernel's handler and the access is retried; returns false if the task
   * was killed instead (SIGSEGV).
   */
  access(t: Task, kind: Access, va: number, value = 0): boolean {
    if (t.killed) return false;
    this.counters.userAccesses++;
    const p = this.port;
    const hi = Math.floor(va / 2 ** 32);
    const lo = va >>> 0;
    for (let tries = 0; ; tries++) {
      const r =
        kind === ACCESS_READ
          ? p.read(hi, lo, 8, 3)
          : kind === ACCESS_WRITE
            ? p.write(hi, lo, 8, t.pid, value >>> 0, 3)
            : p.fetch(hi, lo, 3);
      if (r === 0) {
        if (t.mm.expected !== null) this.verify(t, kind, va, value);
        return true;
      }
      if (r !== FAULT_PF) this.bug(r, `user access at ${va.toString(16)}`);
      if (tries === 4)
        throw new Error(`guest kernel bug: fault loop at ${va.toString(16)} (error ${p.cpu.faultError})`);
      if (!this.pageFault(t, va, p.cpu.faultError)) {
        this.counters.faultSegv++;
        this.counters.kills++;
        t.killed = true;
        return false;
      }
    }
  }

  private verify(t: Task, kind: Access, va: number, value: number): void {
    const exp = t.mm.expected as Map<number, number>;
    const key = Math.floor(va / 4096) * LINES_PER_PAGE + ((va & 4095) >>> 6);
    if (kind === ACCESS_WRITE) {
      exp.set(key, t.pid * 2 ** 32 + (value >>> 0));
      return;
    }
    const c = this.port.cpu;
    const got = kind === ACCESS_FETCH ? c.valueLo : c.valueHi * 2 ** 32 + c.valueLo;
    let want = exp.get(key);
    if (want === undefined) {
      const a = t.mm.find(va) as Vma;
      want = a.file < 0 ? 0 : fileWord(a.file, a.pgoff + (va - a.start) / 4096, (va & 4095) >>> 6);
    }
    if (kind === ACCESS_FETCH) want = want % 256;
    if (got !== want) {
      throw new Error(
        `guest memory corrupted: pid ${t.pid} read ${got.toString(16)} at ${va.toString(16)}, expected ${want.toString(16)}`,
      );
    }
  }

  /** do_page_fault: returns true if the access may be retried, false for SIGSEGV. */
  private pageFault(t: Task, va: number, error: number): boolean {
    this.counters.pageFaults++;
    this.kfetch(ENTRY_PAGE_FAULT);
    if ((error & PF_RSVD) !== 0) throw new Error(`guest kernel bug: reserved-bit fault at ${va.toString(16)}`);
    const mm = t.mm;
    let a = mm.find(va);
    if (a === undefined) {
      a = this.growStack(mm, va);
      if (a === undefined) return false;
    }
    const write = (error & PF_W) !== 0;
    const fetch = (error & PF_ID) !== 0;
    if (write) this.counters.faultWrite++;
    if (fetch) this.counters.faultFetch++;
    if (write && (a.prot & PROT_W) === 0) return false;
    if (fetch && (a.prot & PROT_X) === 0) return false;
    if (!write && !fetch && (a.prot & PROT_R) === 0) return false;
    if (a.huge && this.hugeFault(mm, a, va, write)) return true;
    const leaf = this.leafFor(mm, va, true);
    if (leaf === null) return this.hugeFault(mm, a, va, write);
    const i = this.leafIndex(va);
    this.readEntry(leaf, i);
    const e = this.lastEntry();
    const page = Math.floor(va / 4096) * 4096;
    if ((e.lo & PTE_P) === 0) {
      this.faultIn(mm, a, leaf, page, write);
      return true;
    }
    if (write && (e.lo & PTE_RW) === 0) {
      this.wpFault(mm, a, leaf, page, e);
      return true;
    }
    // The entry already allows the access: a stale TLB entry (spurious fault).
    this.counters.faultSpurious++;
    if ((error & PF_P) !== 0) this.ok(this.port.invlpg(Math.floor(page / 2 ** 32), page >>> 0), 'INVLPG');
    return true;
  }

  /** expand_stack: a fault just below a grows-down area extends it, up to the stack limit. */
  private growStack(mm: Mm, va: number): Vma | undefined {
    const s = mm.next(va);
    if (s === undefined || !s.growsDown) return undefined;
    const page = Math.floor(va / 4096) * 4096;
    if (s.end - page > STACK_LIMIT) return undefined;
    const prev = mm.vmas[mm.vmas.indexOf(s) - 1];
    if (prev !== undefined && prev.end > page - 256 * 4096) return undefined; // stack guard gap
    s.start = page;
    this.counters.faultStackGrowth++;
    return s;
  }

  /** A not-present page: demand zero, the shared zero page, or a page-cache page. */
  private faultIn(mm: Mm, a: Vma, leaf: TableNode, page: number, write: boolean): void {
    mm.rss++;
    if (a.file >= 0) {
      const pg = this.pageCachePage(a.file, a.pgoff + (page - a.start) / 4096);
      if (write) {
        // Private file mapping: the first write copies the page.
        const copy = this.copyPage(pg);
        this.setPte(leaf, page, copy, this.userFlags(a, true, true));
        this.counters.faultCow++;
        return;
      }
      this.frames.get(pg);
      this.setPte(leaf, page, pg, this.userFlags(a, false, false));
      this.counters.faultFile++;
      return;
    }
    if (!write) {
      this.setPte(leaf, page, this.zeroPage, this.userFlags(a, false, false));
      this.counters.faultZeroPage++;
      return;
    }
    const { gfn, clean } = this.frames.alloc(false);
    if (!clean) this.clearFrame(gfn, false);
    this.setPte(leaf, page, gfn, this.userFlags(a, true, true));
    this.counters.faultDemandZero++;
  }

  /** A write to a present read-only page of a writable area: copy-on-write (or reuse if sole owner). */
  private wpFault(mm: Mm, a: Vma, leaf: TableNode, page: number, e: { gfn: number; lo: number; hi: number }): void {
    // The zero page and page-cache pages always have other holders.
    const shared = e.gfn === this.zeroPage || (this.frames.refs[e.gfn] as number) > 1;
    const i = this.leafIndex(page);
    if (!shared) {
      this.writeEntry(leaf, i, e.hi, (e.lo | PTE_RW | PTE_D | PTE_A) >>> 0);
      this.counters.faultCowReuse++;
    } else {
      let gfn: number;
      if (e.gfn === this.zeroPage) {
        const f = this.frames.alloc(false);
        gfn = f.gfn;
        if (!f.clean) this.clearFrame(gfn, false);
      } else {
        gfn = this.copyPage(e.gfn);
        this.putPage(e.gfn);
      }
      this.setPte(leaf, page, gfn, this.userFlags(a, true, true));
      this.counters.faultCow++;
    }
    this.flush(mm, page, page + 4096);
  }

  /** A fault in a huge-page area: map a 2 MiB page if the whole block fits the area; false to fall back. */
  private hugeFault(mm: Mm, a: Vma, va: number, write: boolean): boolean {
    const l = this.layout;
    const level = l.indexBits.length - 2;
    const span = spanOf(l, level);
    const base = Math.floor(va / span) * span;
    if (base < a.start || base + span > a.end) return false;
    const node = this.tableAt(mm, va, level);
    if (node === null) return false;
    const kids = node.kids as Array<TableNode | number | null>;
    const i = Math.floor(va / span) % (this.entries[level] as number);
    const k = kids[i];
    if (k instanceof TableNode) return false;
    if (typeof k === 'number') {
      // Present huge page: a write to a shared one copies it; otherwise the entry already allows it.
      this.readEntry(node, i);
      const e = this.lastEntry();
      if (!write || (e.lo & PTE_RW) !== 0) {
        this.counters.faultSpurious++;
        this.ok(this.port.invlpg(Math.floor(va / 2 ** 32), va >>> 0), 'INVLPG');
        return true;
      }
      let first = k;
      if (this.frames.hugeShared(k)) {
        first = this.frames.allocHuge();
        if (first < 0) throw new OutOfMemory('out of huge pages');
        for (let p = 0; p < FRAMES_PER_HUGE; p++) this.copyLines(k + p, first + p);
        this.frames.putHuge(k);
        kids[i] = first;
      }
      const [hi, lo] = this.entry(first, this.userFlags(a, true, true)[0] | PTE_PS, this.userFlags(a, true, true)[1]);
      this.writeEntry(node, i, hi, lo);
      this.counters.faultCow++;
      this.flush(mm, base, base + span);
      return true;
    }
    const first = this.frames.allocHuge();
    if (first < 0) return false;
    for (let p = 0; p < FRAMES_PER_HUGE; p++) this.clearFrame(first + p, false);
    const f = this.userFlags(a, true, true);
    const [hi, lo] = this.entry(first, f[0] | PTE_PS, f[1]);
    this.writeEntry(node, i, hi, lo);
    kids[i] = first;
    node.used++;
    mm.rss += FRAMES_PER_HUGE;
    this.counters.faultHuge++;
    return true;
  }

  /** The page-cache frame of (file, page), read from "disk" by DMA on a miss. */
  private pageCachePage(file: number, page: number): number {
    const key = file * 2 ** 24 + page;
    let gfn = this.pageCache.get(key);
    if (gfn !== undefined) return gfn;
    gfn = this.frames.alloc(false).gfn;
    for (let line = 0; line < LINES_PER_PAGE; line++) {
      const w = fileWord(file, page, line);
      const gpa = gfn * 4096 + line * 64;
      this.port.pwrite(Math.floor(gpa / 2 ** 32), gpa >>> 0, 8, Math.floor(w / 2 ** 32), w >>> 0);
    }
    this.pageCache.set(key, gfn);
    this.counters.pageCacheFills++;
    return gfn;
  }

  /** copy_page into a new frame (one word per cache line, through the direct map). */
  private copyPage(src: number): number {
    const { gfn } = this.frames.alloc(false);
    this.copyLines(src, gfn);
    return gfn;
  }

  private copyLines(src: number, dst: number): void {
    const c = this.port.cpu;
    for (let line = 0; line < LINES_PER_PAGE; line++) {
      this.kread(src * 4096 + line * 64, 8);
      this.kwrite(dst * 4096 + line * 64, 8, c.valueHi, c.valueLo);
    }
  }

  /**
   * Page aging (what kswapd's LRU scan does): clear the accessed bit of up to
   * `max` present pages of `mm` from `from`, counting the young ones, then flush.
   */
  age(mm: Mm, from: number, max: number): number {
    let seen = 0;
    let young = 0;
    let last = from;
    for (const a of mm.vmas) {
      if (a.end <= from || seen >= max) continue;
      this.forEachPresent(
        mm,
        Math.max(a.start, from),
        a.end,
        (leaf, i, va) => {
          if (seen >= max) return;
          seen++;
          last = va + 4096;
          this.readEntry(leaf, i);
          const e = this.lastEntry();
          if ((e.lo & PTE_A) !== 0) {
            young++;
            this.writeEntry(leaf, i, e.hi, (e.lo & ~PTE_A) >>> 0);
          }
        },
        () => {},
      );
    }
    if (young > 0) this.flush(mm, from, last);
    this.counters.agedYoung += young;
    return last;
  }

  /** Frames the kernel holds beyond boot, the page cache and live processes (must be 0 when all exited). */
  leakedFrames(): number {
    return this.frames.inUse - this.bootFrames - this.pageCache.size;
  }

  /** Counters as a flat record, names prefixed "guest.". */
  stats(): Record<string, number> {
    const c = this.counters;
    const s: Record<string, number> = {
      'guest.processes': c.processes,
      'guest.threads': c.threads,
      'guest.execs': c.execs,
      'guest.exits': c.exits,
      'guest.kills': c.kills,
      'guest.context_switches': c.contextSwitches,
      'guest.cr3_switches': c.cr3Switches,
      'guest.page_faults': c.pageFaults,
      'guest.page_faults.write': c.faultWrite,
      'guest.page_faults.fetch': c.faultFetch,
      'guest.page_faults.demand_zero': c.faultDemandZero,
      'guest.page_faults.zero_page': c.faultZeroPage,
      'guest.page_faults.file': c.faultFile,
      'guest.page_faults.cow': c.faultCow,
      'guest.page_faults.cow_reuse': c.faultCowReuse,
      'guest.page_faults.stack_growth': c.faultStackGrowth,
      'guest.page_faults.huge': c.faultHuge,
      'guest.page_faults.spurious': c.faultSpurious,
      'guest.page_faults.segv': c.faultSegv,
      'guest.user_accesses': c.userAccesses,
      'guest.pte_reads': c.pteReads,
      'guest.pte_writes': c.pteWrites,
      'guest.tables_allocated': c.tablesAllocated,
      'guest.tables_freed': c.tablesFreed,
      'guest.page_cache_fills': c.pageCacheFills,
      'guest.tlb_flushes.pages': c.flushesLocal,
      'guest.tlb_flushes.full': c.flushesFull,
      'guest.shootdown_ipis': c.shootdownIpis,
      'guest.pages_aged_young': c.agedYoung,
      'guest.frames_peak': this.frames.peakInUse,
    };
    let total = 0;
    for (const [k, v] of Object.entries(c.syscalls).sort()) {
      s[`guest.syscalls.${k}`] = v;
      total += v;
    }
    s['guest.syscalls'] = total;
    return s;
  }
}

/** The content of line `line` of page `page` of file `file`, as a number below 2^53. */
export function fileWord(file: number, page: number, line: number): number {
  let h = Math.imul(file + 1, 0x9e3779b1) ^ Math.imul(page + 1, 0x85ebca6b) ^ Math.imul(line + 1, 0xc2b2ae35);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return (file & 0xffff) * 2 ** 32 + (h >>> 0);
}

export { PROT_R, PROT_W, PROT_X };
