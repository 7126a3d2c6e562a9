/**
 * One linear address through an image's page tables, step by step: Umbra's
 * walker (with its trace) for the walk, access.ts for the rights check and
 * the #PF error code, the CPU model's control bits (CR0.WP, CR4.SMEP/SMAP/
 * PKE, RFLAGS.AC from the image). PKRU is not in a QEMU core: taken as 0.
 */
import { CTL_PKE, CTL_SMAP, CTL_SMEP, CTL_WP, checkAccess, faultError, PERM_G, PERM_PK_SHIFT, PERM_U, PERM_W, PERM_XD, } from '../arch/x86/access.js';
import { CR4_PGE, FETCH, PF_ID, PF_P, PF_PK, PF_RSVD, PF_U, PF_W, WRITE } from '../arch/x86/bits.js';
import { LEVEL_NAMES } from '../arch/x86/modes.js';
import { WALK_OK, Walker, WalkResult } from '../arch/x86/walker.js';
import { hex16, hx, hx64, TWO32 } from './format.js';
import { leafFrame, PDPTE_QEMU_A, tableFrame } from './tree.js';
const ACCESS_NAMES = ['read', 'write', 'instruction fetch'];
export function translate(view, req) {
    const va = `0x${hex16(req.vaHi, req.vaLo)}`;
    const base = { va, access: ACCESS_NAMES[req.access], cpl: req.cpl, steps: [] };
    const fmt = view.fmt;
    const root = req.twin ? view.twin : view.root;
    if (fmt === null || root === null) {
        return {
            ...base,
            root: 'none',
            result: 'paging-off',
            physical: hx(req.vaLo >>> 0),
            explanation: `paging is off (CR0.PG=0): the physical address is the linear address`,
            notes: [],
        };
    }
    const mode = fmt.mode;
    const rootText = rootLabel(view, root, req.twin === true);
    if (mode.vaBits !== 32 && !view.cpu.canonical(req.vaHi)) {
        const bit = mode.vaBits - 1;
        return {
            ...base,
            root: rootText,
            result: 'gp',
            explanation: `#GP(0): ${va} is not canonical (bits 63:${bit} must all equal bit ${bit})`,
            notes: [],
        };
    }
    const notes = [];
    const walk = new WalkResult();
    const r = new Walker().walk(view.image.memory, fmt, root.pfn, root.pdpte, req.vaHi, req.vaLo, walk);
    const trace = walk.steps();
    const steps = trace.map((s) => stepView(fmt, root, s, notes));
    const ctl = view.cpu.ctl;
    if (r !== WALK_OK) {
        const error = faultError(r, req.access, req.cpl, ctl);
        const why = r === 0 ? `not present at the ${lastName(fmt, trace)}` : `reserved bits set in the ${lastName(fmt, trace)}`;
        return {
            ...base,
            root: rootText,
            steps,
            result: 'fault',
            errorCode: error,
            explanation: pfText(error, why),
            notes,
        };
    }
    let perm = walk.perm;
    if ((view.cpu.cr4 & CR4_PGE) === 0)
        perm &= ~PERM_G; // G means nothing without CR4.PGE
    const size = 2 ** walk.shift;
    const offset = (req.vaLo >>> 0) % size;
    const pa = walk.pfn * 4096 + offset;
    if ((ctl & CTL_PKE) !== 0 && (perm & PERM_U) !== 0 && req.access !== FETCH) {
        notes.push('PKRU is not in the image: taken as 0 (every key allows everything)');
    }
    const error = checkAccess(perm, req.access, req.cpl, ctl, 0);
    const verdict = `${base.access} at CPL ${req.cpl}`;
    return {
        ...base,
        root: rootText,
        steps,
        result: error === 0 ? 'ok' : 'fault',
        physical: hx(pa),
        pageSize: size,
        rights: rightsText(fmt, perm, trace),
        ...(error === 0 ? {} : { errorCode: error }),
        explanation: error === 0 ? `${verdict}: allowed` : pfText(error, `${verdict} refused: ${denial(perm, req, ctl)}`),
        notes,
    };
}
function rootLabel(view, root, twin) {
    const kind = view.rootKind === null ? '' : twin ? (view.rootKind === 'kernel' ? 'user' : 'kernel') : view.rootKind;
    const what = twin ? `KPTI twin of CR3, ${hx(root.cr3)}` : `CR3 ${hx(root.cr3)}`;
    return kind ? `${what} (${kind} half of a KPTI pair)` : what;
}
function lastName(fmt, trace) {
    const s = trace[trace.length - 1];
    return LEVEL_NAMES[fmt.mode.name][s.level];
}
function stepView(fmt, root, s, notes) {
    const mode = fmt.mode;
    const entry = LEVEL_NAMES[mode.name][s.level];
    const size = mode.wide ? 8 : 4;
    const where = s.tablePfn < 0
        ? `register ${s.index} (loaded from ${hx(Number(root.cr3 & 0xffffffe0n) + s.index * size)})`
        : `${hx(s.tablePfn * 4096)}[${s.index}]`;
    const value = mode.wide ? `0x${hex16(s.hi, s.lo)}` : `0x${hex16(0, s.lo).slice(8)}`;
    const pdpte = s.tablePfn < 0;
    const ps = !pdpte && ((s.lo >>> 7) & 1 & (fmt.largeMask >>> s.level)) !== 0;
    const leaf = !pdpte && (s.level === 1 || ps);
    const flags = entryFlags(fmt, s, leaf, pdpte);
    let next;
    if ((s.lo & 1) === 0) {
        next = 'not present: #PF';
    }
    else if (pdpte) {
        const bLo = s.lo & fmt.pdpteRsvdLo;
        const bHi = s.hi & fmt.pdpteRsvdHi;
        if ((bLo & PDPTE_QEMU_A) !== 0) {
            notes.push(`${entry} ${s.index} has bit 5 (A) set: reserved in a PDPTE, but QEMU's TCG sets it; treated as noise, like QEMU`);
        }
        if (((bLo & ~PDPTE_QEMU_A) | bHi) !== 0) {
            notes.push(`${entry} ${s.index} has reserved bits ${hx64(bHi, bLo & ~PDPTE_QEMU_A)}: MOV CR3 would have raised #GP`);
        }
        next = `PD at ${hx(tableFrame(true, s.lo, s.hi) * 4096)}`;
    }
    else {
        const r = s.level * 2 + (ps ? 1 : 0);
        const bLo = s.lo & fmt.rsvdLo[r];
        const bHi = s.hi & fmt.rsvdHi[r];
        if ((bLo | bHi) !== 0) {
            next = `reserved bits ${hx64(bHi, bLo)} set: #PF (RSVD)`;
        }
        else if (leaf) {
            next = `${pageSizeText(2 ** fmt.leafShift[s.level])} page at ${hx(leafFrame(fmt, s.level, s.lo, s.hi) * 4096)}`;
        }
        else {
            const table = LEVEL_NAMES[mode.name][s.level - 1].replace(/E$/, ''); // PDE -> PD
            next = `${table} at ${hx(tableFrame(mode.wide, s.lo, s.hi) * 4096)}`;
        }
    }
    return { entry, level: s.level, where, value, flags, next };
}
/** The entry's flags by name (only those that mean something at this level). */
function entryFlags(fmt, s, leaf, pdpte) {
    const lo = s.lo;
    const f = [];
    const bit = (b, name) => {
        if ((lo & (1 << b)) !== 0)
            f.push(name);
    };
    bit(0, 'P');
    if (!pdpte) {
        bit(1, 'RW');
        bit(2, 'US');
    }
    bit(3, 'PWT');
    bit(4, 'PCD');
    bit(5, 'A');
    if (leaf) {
        bit(6, 'D');
        if (s.level === 1)
            bit(7, 'PAT');
        else {
            f.push('PS');
            bit(12, 'PAT');
        }
        bit(8, 'G');
    }
    else if (!pdpte && (lo & 0x80) !== 0) {
        f.push('PS');
    }
    if (fmt.mode.wide && (s.hi & (1 << 31)) !== 0)
        f.push('XD');
    if (leaf && fmt.mode.hasPk && ((s.hi >>> 27) & 0xf) !== 0)
        f.push(`PK=${(s.hi >>> 27) & 0xf}`);
    return f.join(' ') || '-';
}
function rightsText(fmt, perm, trace) {
    const names = LEVEL_NAMES[fmt.mode.name];
    // The levels responsible for a restriction (PAE PDPTE registers carry no rights).
    const at = (test) => trace
        .filter((s) => s.tablePfn >= 0 && test(s))
        .map((s) => names[s.level])
        .join(', ');
    const parts = [
        (perm & PERM_U) !== 0 ? 'user' : `supervisor-only (U/S=0 at ${at((s) => (s.lo & 4) === 0)})`,
        (perm & PERM_W) !== 0 ? 'writable' : `read-only (R/W=0 at ${at((s) => (s.lo & 2) === 0)})`,
        (perm & PERM_XD) !== 0
            ? `no-execute (XD at ${at((s) => (s.hi & (1 << 31)) !== 0)})`
            : fmt.mode.hasXd && !fmt.nxe
                ? 'executable (EFER.NXE=0)'
                : 'executable',
    ];
    if ((perm & PERM_G) !== 0)
        parts.push('global');
    if (fmt.mode.hasPk)
        parts.push(`key ${(perm >>> PERM_PK_SHIFT) & 0xf}`);
    return parts.join(', ');
}
/**
 * Why checkAccess() refused: the control bit whose absence would allow the
 * access (found by asking checkAccess again), else the page's own rights.
 */
function denial(perm, req, ctl) {
    const controls = [
        [CTL_SMAP, 'SMAP (CR4.SMAP=1, RFLAGS.AC=0) forbids supervisor data accesses to user pages'],
        [CTL_SMEP, 'SMEP (CR4.SMEP=1) forbids supervisor fetches from user pages'],
        [CTL_WP, 'CR0.WP=1 makes read-only pages read-only for the kernel too'],
    ];
    for (const [bit, why] of controls) {
        if ((ctl & bit) !== 0 && checkAccess(perm, req.access, req.cpl, ctl & ~bit, 0) === 0)
            return why;
    }
    if (req.access === FETCH && (perm & PERM_XD) !== 0)
        return 'the page is no-execute';
    if (req.cpl === 3 && (perm & PERM_U) === 0)
        return 'the page is supervisor-only';
    if (req.access === WRITE && (perm & PERM_W) === 0)
        return 'the page is read-only';
    return 'the protection key forbids it';
}
export function pageSizeText(size) {
    return size >= 2 ** 30 ? `${size / 2 ** 30} GiB` : size >= 2 ** 20 ? `${size / 2 ** 20} MiB` : `${size / 1024} KiB`;
}
/** "#PF, error code 0x15 (P: protection, U: user mode, I/D: instruction fetch): why". */
function pfText(error, why) {
    const bits = [(error & PF_P) !== 0 ? 'P: protection violation' : 'P=0: not present'];
    if ((error & PF_W) !== 0)
        bits.push('W: write');
    if ((error & PF_U) !== 0)
        bits.push('U: user mode');
    if ((error & PF_RSVD) !== 0)
        bits.push('RSVD: reserved bit');
    if ((error & PF_ID) !== 0)
        bits.push('I/D: instruction fetch');
    if ((error & PF_PK) !== 0)
        bits.push('PK: protection key');
    return `#PF, error code ${hx(error)} (${bits.join(', ')}): ${why}`;
}
/** Text form of a translation (what `umbra translate` prints). */
export function renderTranslation(t, indent = '') {
    const out = [];
    out.push(`${indent}${t.va}, ${t.access} at CPL ${t.cpl}, from ${t.root}`);
    const w = Math.max(0, ...t.steps.map((s) => s.where.length));
    for (const s of t.steps) {
        out.push(`${indent}  ${s.entry.padEnd(6)}${s.where.padEnd(w)} = ${s.value}  ${s.flags}  -> ${s.next}`);
    }
    if (t.physical !== undefined && t.result !== 'paging-off') {
        out.push(`${indent}  physical address ${t.physical} (${pageSizeText(t.pageSize)} page)`);
        out.push(`${indent}  effective rights: ${t.rights}`);
    }
    else if (t.physical !== undefined) {
        out.push(`${indent}  physical address ${t.physical}`);
    }
    out.push(`${indent}  ${t.explanation}`);
    for (const n of t.notes)
        out.push(`${indent}  note: ${n}`);
    return `${out.join('\n')}\n`;
}
/** Parse a linear address (0x hex or decimal) into halves; undefined if it is not one. */
export function parseVa(text) {
    if (!/^(0x[0-9a-f]+|\d+)$/i.test(text))
        return undefined;
    const v = BigInt(text);
    if (v >= 2n ** 64n)
        return undefined;
    return { hi: Number(v / BigInt(TWO32)), lo: Number(v % BigInt(TWO32)) };
}
//# sourceMappingURL=translate.js.map