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
 */
import { type AccessKind, FETCH, PF_ID, PF_P, PF_PK, PF_U, PF_W, WRITE } from './bits.js';

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
export function faultError(kind: number, access: AccessKind, cpl: number, ctl: number): number {
  let e = kind;
  if (access === WRITE) e |= PF_W;
  if (cpl === 3) e |= PF_U;
  if (access === FETCH && (ctl & CTL_ID) !== 0) e |= PF_ID;
  return e;
}

/**
 * Decide an access against a translation's permission word.
 * Returns 0 when allowed, else the #PF error code.
 */
export function checkAccess(perm: number, access: AccessKind, cpl: number, ctl: number, pkru: number): number {
  const user = cpl === 3;
  const userAddr = (perm & PERM_U) !== 0;
  let ok: boolean;
  if (access === FETCH) {
    if (user) ok = userAddr;
    else ok = !(userAddr && (ctl & CTL_SMEP) !== 0);
    if ((perm & PERM_XD) !== 0) ok = false;
  } else {
    if (user) {
      ok = userAddr && (access !== WRITE || (perm & PERM_W) !== 0);
    } else if (userAddr && (ctl & CTL_SMAP) !== 0 && (ctl & CTL_AC) === 0) {
      ok = false; // SMAP: explicit supervisor data access to a user-mode address
    } else {
      ok = access !== WRITE || (perm & PERM_W) !== 0 || (ctl & CTL_WP) === 0;
    }
  }
  let pk = false;
  if (access !== FETCH && userAddr && (ctl & CTL_PKE) !== 0) {
    const key = (perm >>> PERM_PK_SHIFT) & 0xf;
    const rights = pkru >>> (2 * key);
    if ((rights & 1) !== 0)
      pk = true; // access disable
    else if ((rights & 2) !== 0 && access === WRITE && (user || (ctl & CTL_WP) !== 0)) pk = true;
  }
  if (ok && !pk) return 0;
  return faultError(pk ? PF_P | PF_PK : PF_P, access, cpl, ctl);
}
