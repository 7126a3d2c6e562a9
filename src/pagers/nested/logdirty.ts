/**
 * Log-dirty mode, the nested pager's half (Xen's HAP log-dirty: hap.c
 * hap_enable_log_dirty, hap_clean_dirty_bitmap, hap_disable_log_dirty); the
 * log itself is the domain's (hypervisor/logdirty.ts). Two ways, switch
 * `logdirty`:
 *
 *  - wp: every RAM leaf becomes ram_logdirty, which is not writable. The
 *    change is made lazily (tdp.ts, rule 5: root entries marked, resolved on
 *    the faults they cause). A write — the guest's own, the CPU's setting of
 *    the guest's accessed/dirty flags, or with EPT A/D on any guest
 *    paging-structure read, which EPT treats as a write (SDM vol. 3C,
 *    29.3.3.2) — takes an EPT violation or #NPF; the pager logs the gfn
 *    (paging_mark_dirty) and makes its leaf ram_rw again
 *    (p2m_change_type_one, from hvm_hap_nested_page_fault), splitting a
 *    superpage first.
 *  - pml: page-modification logging (SDM vol. 3C, 29.3.6; Xen's
 *    vmx_domain_enable_pml, ept_vcpu_flush_pml_buffer). A 4 KiB
 *    ram_logdirty leaf stays writable with its EPT dirty flag clear; the CPU
 *    logs the page when it sets the flag into the vCPU's 512-entry log
 *    (arch/x86/pml.ts). A full log is a PML-full exit; the pager drains it
 *    then, and every vCPU's log before the domain's log is read or cleaned
 *    (paging_log_dirty_op -> p2m_flush_hardware_cached_dirty), turning each
 *    logged page ram_rw and marking it. Superpages stay write-protected under
 *    PML too, so the first write splits them (ept_p2m_type_to_flags).
 *
 * Rules this module keeps (audit.ts checks them):
 *  - In log-dirty mode a leaf the hardware can use is writable only if its
 *    gfn is logged (in the domain's log) or, under pml, is a 4 KiB
 *    ram_logdirty leaf whose dirty flag is clear or whose gfn is in a vCPU's
 *    PML log. Under wp a ram_logdirty leaf is never writable.
 *  - Enabling, cleaning and disabling flush every vCPU's TLB (Xen:
 *    guest_flush_tlb_mask), so no cached writable translation outlives them.
 *  - Writes the pager makes for the guest (emulation, A/D flags of a
 *    software walk) and devices make (pwrite) are marked directly.
 */
import type { Cpu } from '../../arch/x86/cpu.js';
import { PmlLog } from '../../arch/x86/pml.js';
import type { LogDirty, LogDirtyOps } from '../../hypervisor/logdirty.js';
import type { NestedCounters } from './counters.js';
import { P2M_LOGDIRTY, P2M_RAM_RW } from './entries.js';
import type { LogDirtyMode } from './options.js';
import type { Stage2Table } from './tdp.js';

export class NestedDirtyLog implements LogDirtyOps {
  readonly pagingOffTracked = true;
  /** Pages logged by PML logs since given up (disable). */
  private loggedBefore = 0;

  constructor(
    private readonly log: LogDirty,
    private readonly mode: LogDirtyMode,
    private readonly table: Stage2Table,
    private readonly cpus: readonly Cpu[],
    private readonly counters: NestedCounters,
    /** Flush every vCPU's cached translations (INVEPT on each). */
    private readonly flushAll: () => void,
  ) {
    log.register(this);
  }

  get on(): boolean {
    return this.log.on;
  }

  /** p2m_change_entry_type_global, then guest_flush_tlb_mask. */
  private changeAll(): void {
    if (this.table.markAll()) this.flushAll();
  }

  enable(): void {
    this.counters['logdirty.enables']++;
    this.table.globalLogdirty = true;
    if (this.mode === 'pml') {
      // vmx_domain_enable_pml: a log per vCPU, index 511; it takes effect with the global type change.
      this.table.pml = true;
      for (const c of this.cpus) c.mmu.walker.pml = new PmlLog();
    }
    this.changeAll();
  }

  clean(): void {
    this.counters['logdirty.cleans']++;
    this.changeAll();
  }

  disable(): void {
    this.loggedBefore = this.pmlLogged();
    for (const c of this.cpus) c.mmu.walker.pml = null;
    this.table.globalLogdirty = false;
    this.table.pml = false;
    this.changeAll();
  }

  /** Pages the CPU logged in PML logs, in all. */
  pmlLogged(): number {
    let n = this.loggedBefore;
    for (const c of this.cpus) n += c.mmu.walker.pml?.logged ?? 0;
    return n;
  }

  /** Every vCPU's PML log into the domain's log (p2m_flush_hardware_cached_dirty). */
  flush(): void {
    for (const c of this.cpus) this.drain(c);
  }

  /**
   * Empty one vCPU's PML log (ept_vcpu_flush_pml_buffer): each logged page
   * becomes ram_rw (p2m_change_type_one) and is marked, whatever that change
   * found, as Xen does.
   */
  drain(cpu: Cpu): void {
    const pml = cpu.mmu.walker.pml;
    if (pml === null || pml.index === 511) return;
    const c = this.counters;
    c['pml.drains']++;
    for (const gpa of pml.drain()) {
      const gfn = gpa / 4096;
      c['pml.entries_drained']++;
      if (this.table.changeTypeOne(gfn, P2M_LOGDIRTY, P2M_RAM_RW)) c['logdirty.made_writable']++;
      this.mark(gfn);
    }
  }

  /**
   * A stage-2 write fault on `gfn` whose leaf is ram_logdirty (the wp way,
   * or a superpage under pml): log it and make it ram_rw; the access is
   * retried (hvm_hap_nested_page_fault). False if the leaf is not ram_logdirty.
   */
  writeFault(gfn: number): boolean {
    if (!this.table.changeTypeOne(gfn, P2M_LOGDIRTY, P2M_RAM_RW)) return false;
    this.counters['logdirty.write_faults']++;
    this.counters['logdirty.made_writable']++;
    this.mark(gfn);
    return true;
  }

  /** Record a write to `gfn` (paging_mark_dirty); nothing outside log-dirty mode. */
  mark(gfn: number): void {
    if (this.log.mark(gfn)) this.counters['logdirty.pages_dirtied']++;
  }

  /** Is `gfn` logged: in the domain's log or in a vCPU's PML log (for the isolation checker)? */
  logged(gfn: number): boolean {
    if (this.log.isDirty(gfn)) return true;
    for (const c of this.cpus) {
      const pml = c.mmu.walker.pml;
      if (pml === null) continue;
      for (const g of pml.gfns()) if (g === gfn) return true;
    }
    return false;
  }
}
