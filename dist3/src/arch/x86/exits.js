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
/** Room for nested paging: EPT violation, EPT misconfiguration, AMD nested page fault. */
export const EXIT_EPT_VIOLATION = 6;
export const EXIT_EPT_MISCONFIG = 7;
export const EXIT_NPF = 8;
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
];
export function newExitInfo() {
    return { vaHi: 0, vaLo: 0, access: 0, cpl: 0, error: 0, invpcidType: 0, pcid: 0 };
}
//# sourceMappingURL=exits.js.map