/**
 * TLB maintenance (Linux's arch/x86/mm/tlb.c): flushing an address space's
 * changed entries — INVLPG per page up to the single-page flush ceiling,
 * otherwise INVPCID single-context (with PCIDs) or a CR3 reload — on every
 * vCPU that has it loaded (the others by IPI), the per-address-space
 * generation (tlb_gen) that lets other vCPUs catch up at their next switch,
 * and switch_mm with its per-vCPU PCID allocation.
 *
 * Rules: every change to an entry a TLB may hold is followed by flush() of
 * its address space before the change is relied on — permission upgrades and
 * accessed-bit clears included (docs/kernel.md: the model is well behaved
 * where Linux is not); a vCPU's PCID for an address space is reused without
 * a flush only if the vCPU has seen its current generation.
 */

import { kfetch, ok } from './kmem.js';
import type { Mm } from './mm.js';
import { DYN_PCIDS, ENTRY_IPI, type KernelState, type VcpuState } from './state.js';

/** Linux's tlb_single_page_flush_ceiling: above this many pages a range flush flushes everything. */
const FLUSH_CEILING = 33;

/**
 * After changing entries of `mm` in [start, end) (or everything, if start < 0):
 * invalidate on every vCPU that has `mm` loaded (this one directly, the
 * others by IPI), and let the rest catch up at their next switch to it.
 *
 * Lazy TLB (k.opts.lazyTlb, Linux's arch/x86/mm/tlb.c native_flush_tlb_multi
 * and should_flush_tlb): a vCPU that is idle with `mm` still loaded gets no
 * IPI — it catches up in leaveLazy when it runs `mm` again — unless page
 * tables were freed (`freedTables`), which it could still walk: then it is
 * interrupted and, as flush_tlb_func does for a lazy CPU, switches to the
 * kernel's own tables instead of flushing.
 */
export function flush(k: KernelState, mm: Mm, start: number, end: number, freedTables = false): void {
  mm.tlbGen++;
  const pages = start < 0 ? Number.POSITIVE_INFINITY : (end - start) / 4096;
  const lazyTlb = k.opts.lazyTlb !== false;
  const here = k.port.cpu.index;
  onCpusRunning(
    k,
    mm,
    (st) => {
      if (lazyTlb && st.lazy && st !== k.vcpus[here]) {
        // Only reached with freed tables (the filter below): leave the address space.
        switchMm(k, k.initMm);
        k.counters.lazyLeaves++;
        return;
      }
      if (pages <= FLUSH_CEILING) {
        for (let va = start; va < end; va += 4096) ok(k, k.port.invlpg(Math.floor(va / 2 ** 32), va >>> 0), 'INVLPG');
        k.counters.flushesLocal++;
      } else {
        flushAllUser(k);
        k.counters.flushesFull++;
      }
      upToDate(st, mm);
    },
    (st, v) => {
      if (!lazyTlb || v === here || !st.lazy || freedTables) return true;
      k.counters.lazySkips++;
      return false;
    },
  );
}

/** Record that this vCPU's TLB holds nothing older than `mm`'s current generation. */
function upToDate(st: VcpuState, mm: Mm): void {
  st.loadedGen = mm.tlbGen;
  const slot = st.pcidMm.indexOf(mm);
  if (slot >= 0) st.pcidGen[slot] = mm.tlbGen;
}

/**
 * The current vCPU stops being lazy to run a task of `mm`. If `mm` is the
 * address space it kept loaded and flushes were skipped meanwhile, flush
 * now (switch_mm_irqs_off's tlb_gen check when leaving lazy mode).
 */
export function leaveLazy(k: KernelState, mm: Mm): void {
  const st = k.vcpus[k.port.cpu.index] as VcpuState;
  if (!st.lazy) return;
  st.lazy = false;
  if (st.loadedMm !== mm || st.loadedGen === mm.tlbGen) return;
  flushAllUser(k);
  k.counters.lazyCatchups++;
  upToDate(st, mm);
}

/**
 * Run `fn` on every vCPU that has `mm` loaded: on this one directly, on the
 * others by IPI (Linux's on_each_cpu_mask over mm_cpumask).
 */
export function onCpusRunning(
  k: KernelState,
  mm: Mm,
  fn: (st: VcpuState) => void,
  want?: (st: VcpuState, v: number) => boolean,
): void {
  const here = k.port.cpu.index;
  for (let v = 0; v < k.vcpus.length; v++) {
    const st = k.vcpus[v] as VcpuState;
    if (st.loadedMm !== mm) continue;
    if (want !== undefined && !want(st, v)) continue;
    if (v !== here) {
      k.port.selectCpu(v);
      kfetch(k, ENTRY_IPI);
      k.counters.shootdownIpis++;
    }
    fn(st);
    if (v !== here) k.port.selectCpu(here);
  }
}

/** Flush the current vCPU's non-global entries of its current address space. */
function flushAllUser(k: KernelState): void {
  const p = k.port;
  const c = p.cpu;
  if (k.usePcid) ok(k, p.invpcid(1, c.cr3Lo & 0xfff, 0, 0), 'INVPCID');
  else ok(k, p.wrcr(3, c.cr3Hi, c.cr3Lo), 'CR3');
}

/** switch_mm: load `mm` on the current vCPU, reusing its PCID when the vCPU is up to date with it. */
export function switchMm(k: KernelState, mm: Mm): void {
  const st = k.vcpus[k.port.cpu.index] as VcpuState;
  if (st.loadedMm === mm) return;
  st.loadedMm = mm;
  st.loadedGen = mm.tlbGen;
  k.counters.cr3Switches++;
  const base = mm.root.gfn * 4096;
  if (!k.usePcid || mm === k.initMm) {
    ok(k, k.port.wrcr(3, Math.floor(base / 2 ** 32), base >>> 0), 'CR3');
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
  ok(k, k.port.wrcr(3, hi >>> 0, (base + slot + 1) >>> 0), 'CR3');
}

/** Forget `mm` in every vCPU's PCID slots (it is being freed); it must be loaded nowhere. */
export function dropPcids(k: KernelState, mm: Mm): void {
  for (const st of k.vcpus) {
    const slot = st.pcidMm.indexOf(mm);
    if (slot >= 0) st.pcidMm[slot] = null;
    if (st.loadedMm === mm) throw new Error('guest kernel bug: freeing a loaded address space');
  }
}
