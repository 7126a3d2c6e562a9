/**
 * VM exits: the events on which the CPU stops the guest and hands control to
 * the host (a pager), one exit per architectural event, each with a typed
 * reason. What the host needs to know about the event is in the vCPU's exit
 * information (Cpu.exitInfo), as a VMCS holds the exit qualification and the
 * guest-linear address (SDM vol. 3C, 27.2; AMD APM vol. 2, 15.7 EXITINFO1/2).
 *
 * Under native paging there is no hypervisor: the same events reach the
 * native pager, which only points the MMU at the guest's tables and lets
 * faults through — nothing is counted as an exit there.
 */

/** A guest page fault the hardware raised on the tables it walks (exception-bitmap #PF intercept). */
export const EXIT_PAGE_FAULT = 0;
/** MOV to CR0, CR3 or CR4 (intercepted control-register access). */
export const EXIT_CR_WRITE = 1;
/** WRMSR to IA32_EFER. */
export const EXIT_MSR_WRITE = 2;
/** INVLPG. */
export const EXIT_INVLPG = 3;
/** INVPCID. */
export const EXIT_INVPCID = 4;
/** The scenario format's `flush` (all of this vCPU's TLB entries, globals included; a CR4.PGE toggle on hardware). */
export const EXIT_FLUSH = 5;
/**
 * Nested paging: EPT violation, EPT misconfiguration (SDM vol. 3C, 29.3.3),
 * AMD nested page fault (APM vol. 2, 15.25.6). ExitInfo holds the
 * guest-physical address, the qualification (EXITINFO1) and whether the
 * access was the final translation or a guest paging-structure reference.
 */
export const EXIT_EPT_VIOLATION = 6;
export const EXIT_EPT_MISCONFIG = 7;
export const EXIT_NPF = 8;
/**
 * Page-modification log full (SDM vol. 3C, 29.3.6; basic exit reason 62):
 * an EPT accessed or dirty flag was due while the vCPU's PML index was out
 * of range; no flag was set and the access did not happen. ExitInfo holds
 * the guest-physical address and the linear address as for a violation.
 */
export const EXIT_PML_FULL = 9;

export type ExitReason = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;

/** Counter names of the reasons ("exit.<name>"), indexed by reason. */
export const EXIT_NAMES = [
  'page_fault',
  'cr_write',
  'msr_write',
  'invlpg',
  'invpcid',
  'flush',
  'ept_violation',
  'ept_misconfig',
  'npf',
  'pml_full',
] as const;

/** What the host reads about the exit in progress (one per vCPU, overwritten by the next). */
export interface ExitInfo {
  /** Page fault, INVLPG, INVPCID type 0: the linear address (two 32-bit halves). */
  vaHi: number;
  vaLo: number;
  /** Page fault: the access kind (READ, WRITE, FETCH) and CPL. */
  access: number;
  cpl: number;
  /** Page fault: the error code the hardware reported. */
  error: number;
  /** INVPCID: the type and PCID operand. */
  invpcidType: number;
  pcid: number;
  /** CR write: which register (0, 3 or 4). */
  cr: number;
  /** Stage-2 exits: the guest-physical address (below 2^52, a float). */
  gpa: number;
  /** Stage-2 exits: the EPT exit qualification, or the low half of NPT EXITINFO1 (access.ts, stage2Qualification). */
  qualification: number;
  /** Stage-2 exits: the final translation of a linear address (else a guest paging-structure reference or a PDPTE load). */
  gpaFinal: boolean;
  /** Stage-2 exits: a guest-linear address (vaHi, vaLo) is valid; false for a PAE PDPTE load at MOV to CR. */
  linear: boolean;
}

export function newExitInfo(): ExitInfo {
  return {
    vaHi: 0,
    vaLo: 0,
    access: 0,
    cpl: 0,
    error: 0,
    invpcidType: 0,
    pcid: 0,
    cr: 0,
    gpa: 0,
    qualification: 0,
    gpaFinal: false,
    linear: false,
  };
}
