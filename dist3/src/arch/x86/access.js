/**
 * Access rights (SDM vol. 3A, 4.6) and page-fault error codes (4.7), in one
 * place. The walker and the TLB both produce a *permission word* that sums up
 * a translation; checkAccess() decides an access against it and the CPU's
 * current control state, and faultError() is the only builder of #PF error
 * codes.
 *
 * Permission word layout (our own, chosen to reuse entry bit positions):
 *   bit 1  W   R/W=1 at every level
 *   bit 2  U   U/S=1 at every level (a user-mode address)
 *   bit 3  XD  execute-disable at some level (only when EFER.NXE=1 and the format has XD)
 *   bit 6  D   the leaf's dirty flag
 *   bit 8  G   global (leaf G with CR4.PGE=1)
 *   bits 16-19 the leaf's protection key (IA-32e formats)
 * For an EPT translation (modes.ts, eptFormat) bits 0, 1, 2 and 10 are the
 * entries' own R, W, X and XU ANDed over the walk, and bit 6 is D as above.
 *
 * Stage-2 faults (EPT violations, AMD nested page faults) are decided by
 * stage2Allows() and described by stage2Qualification(), here as well.
 */
import { FETCH, PF_ID, PF_P, PF_PK, PF_RSVD, PF_U, PF_W, READ, WRITE } from './bits.js';
import { ENTRY_EPT, EPT_R, EPT_W, EPT_X, EPT_XU } from './modes.js';
export const PERM_W = 1 << 1;
export const PERM_U = 1 << 2;
export const PERM_XD = 1 << 3;
export const PERM_D = 1 << 6;
export const PERM_G = 1 << 8;
export const PERM_PK_SHIFT = 16;
/** Control state that the rights check reads, packed as bits. */
export const CTL_WP = 1 << 0; // CR0.WP
export const CTL_SMEP = 1 << 1; // CR4.SMEP
export const CTL_SMAP = 1 << 2; // CR4.SMAP
export const CTL_AC = 1 << 3; // RFLAGS.AC
export const CTL_PKE = 1 << 4; // CR4.PKE with IA-32e paging
export const CTL_ID = 1 << 5; // I/D reported: CR4.SMEP, or CR4.PAE with EFER.NXE
/**
 * The error code of a #PF for `access` at `cpl`; `kind` holds the reason bits
 * (0 for not present, PF_P for a rights violation, PF_P|PF_RSVD, PF_P|PF_PK).
 */
export function faultError(kind, access, cpl, ctl) {
    let e = kind;
    if (access === WRITE)
        e |= PF_W;
    if (cpl === 3)
        e |= PF_U;
    if (access === FETCH && (ctl & CTL_ID) !== 0)
        e |= PF_ID;
    return e;
}
/**
 * Decide an access against a translation's permission word.
 * Returns 0 when allowed, else the #PF error code.
 */
export function checkAccess(perm, access, cpl, ctl, pkru) {
    const user = cpl === 3;
    const userAddr = (perm & PERM_U) !== 0;
    let ok;
    if (access === FETCH) {
        if (user)
            ok = userAddr;
        else
            ok = !(userAddr && (ctl & CTL_SMEP) !== 0);
        if ((perm & PERM_XD) !== 0)
            ok = false;
    }
    else {
        if (user) {
            ok = userAddr && (access !== WRITE || (perm & PERM_W) !== 0);
        }
        else if (userAddr && (ctl & CTL_SMAP) !== 0 && (ctl & CTL_AC) === 0) {
            ok = false; // SMAP: explicit supervisor data access to a user-mode address
        }
        else {
            ok = access !== WRITE || (perm & PERM_W) !== 0 || (ctl & CTL_WP) === 0;
        }
    }
    let pk = false;
    if (access !== FETCH && userAddr && (ctl & CTL_PKE) !== 0) {
        const key = (perm >>> PERM_PK_SHIFT) & 0xf;
        const rights = pkru >>> (2 * key);
        if ((rights & 1) !== 0)
            pk = true; // access disable
        else if ((rights & 2) !== 0 && access === WRITE && (user || (ctl & CTL_WP) !== 0))
            pk = true;
    }
    if (ok && !pk)
        return 0;
    return faultError(pk ? PF_P | PF_PK : PF_P, access, cpl, ctl);
}
/**
 * May `access` use a stage-2 translation with permission word `perm`?
 * EPT (SDM vol. 3C, 29.3.3.2): a read needs R, a write W, a fetch X — or,
 * with mode-based execute control, XU when the stage-1 translation is a
 * user-mode address (`user`). NPT (APM vol. 2, 15.25.5): every nested access
 * is a user access, so it is the ordinary check at CPL 3 (U/S, R/W, NX).
 */
export function stage2Allows(fmt, perm, access, user) {
    if (fmt.kind === ENTRY_EPT) {
        if (access === READ)
            return (perm & EPT_R) !== 0;
        if (access === WRITE)
            return (perm & EPT_W) !== 0;
        return (perm & (user && (fmt.rightsLo & EPT_XU) !== 0 ? EPT_XU : EPT_X)) !== 0;
    }
    return checkAccess(perm, access, 3, 0, 0) === 0;
}
/** EPT violation exit qualification bits (SDM vol. 3C, 28.2.1, table 28-7). */
export const EPTQ_READ = 1 << 0;
export const EPTQ_WRITE = 1 << 1;
export const EPTQ_FETCH = 1 << 2;
export const EPTQ_READABLE = 1 << 3;
export const EPTQ_WRITABLE = 1 << 4;
export const EPTQ_EXECUTABLE = 1 << 5;
export const EPTQ_USER_EXECUTABLE = 1 << 6;
export const EPTQ_LINEAR_VALID = 1 << 7;
export const EPTQ_FINAL = 1 << 8; // the access was the translation's own; clear: a guest paging-structure reference
/**
 * What a stage-2 fault reports, built in one place. `status` is the stage-2
 * walk's outcome (0: not present, PF_P: present but `allowed` refuses the
 * access, PF_P|PF_RSVD: reserved bits / misconfiguration) and `allowed` the
 * rights the path granted (its permission word; 0 past a not-present entry).
 *  - EPT: the violation's exit qualification — the access (bits 2:0), what
 *    the path allowed (R, W, X, XU in bits 6:3), a valid guest-linear
 *    address (bit 7) and whether the access was the final translation
 *    (bit 8) or a guest paging-structure reference. A misconfiguration has
 *    no qualification (0).
 *  - NPT: EXITINFO1's low half (APM vol. 2, 15.25.6), a #PF error code for a
 *    user access; bits 32 and 33 (final / table) are the caller's `final`.
 */
export function stage2Qualification(fmt, status, allowed, access, final) {
    if (fmt.kind === ENTRY_EPT) {
        if (status === (PF_P | PF_RSVD))
            return 0;
        let q = access === READ ? EPTQ_READ : access === WRITE ? EPTQ_WRITE : EPTQ_FETCH;
        if (status !== 0) {
            if ((allowed & EPT_R) !== 0)
                q |= EPTQ_READABLE;
            if ((allowed & EPT_W) !== 0)
                q |= EPTQ_WRITABLE;
            if ((allowed & EPT_X) !== 0)
                q |= EPTQ_EXECUTABLE;
            if ((allowed & EPT_XU) !== 0)
                q |= EPTQ_USER_EXECUTABLE;
        }
        return q | EPTQ_LINEAR_VALID | (final ? EPTQ_FINAL : 0);
    }
    return faultError(status, access, 3, fmt.xd ? CTL_ID : 0);
}
//# sourceMappingURL=access.js.map