/**
 * The shadow record, the index arithmetic between a shadow and the guest
 * table it shadows, and which guest entry bits shadow entries copy (the role
 * of Xen's shadow/types.h).
 */
import { MODE_PAE } from '../../arch/x86/modes.js';
/** Bits of a guest leaf copied into a shadow leaf: RW, US, PWT, PCD, G (+ XD and PK in the high half). */
export const LEAF_COPY_LO = 0x11e;
/** Bits of a guest non-leaf entry copied into a shadow non-leaf entry: RW, US, PWT, PCD (+ XD). */
export const NONLEAF_COPY_LO = 0x1e;
/** High-half bits a shadow leaf copies: XD and the protection key. */
export const HI_COPY = 0x80000000 | (0xf << 27);
/** The hardware format of the shadows for a guest format: 32-bit guests run on PAE shadows. */
export function hardwareMode(fmt) {
    return fmt.mode.wide ? fmt.mode : MODE_PAE;
}
/** Index in the guest table of the entry shadow entry `i` of `sh` derives from. */
export function guestIndex(sh, i) {
    if (sh.guestWide || sh.fl)
        return i;
    return sh.level === 2 ? sh.part * 256 + (i >>> 1) : sh.part * 512 + i;
}
/** Shadow entries of `sh` derived from guest entry `gi` of the table it shadows. */
export function derivedEntries(sh, gi) {
    if (sh.guestWide)
        return [gi];
    if (sh.level === 2)
        return gi >>> 8 === sh.part ? [(gi & 255) << 1, ((gi & 255) << 1) | 1] : [];
    return gi >>> 9 === sh.part ? [gi & 511] : [];
}
/** Small integer for a walk format (mode, NXE, PSE): part of the shadow key. */
export function formatIndex(fmt) {
    const m = fmt.mode.name === '32-bit' ? 0 : fmt.mode.name === 'pae' ? 1 : fmt.mode.name === '4-level' ? 2 : 3;
    return m * 4 + (fmt.nxe ? 2 : 0) + (fmt.pse ? 1 : 0);
}
/** A shadow as a reader would name it: level, guest frame, part, format. */
export function shadowName(sh) {
    if (sh.fl)
        return `fl${sh.level}@gfn ${sh.gfn}`;
    return `l${sh.level}@gfn ${sh.gfn}${sh.part ? ` part ${sh.part}` : ''} (${sh.fmt.mode.name})`;
}
//# sourceMappingURL=types.js.map