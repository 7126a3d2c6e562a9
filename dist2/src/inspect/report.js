/**
 * The SDM-correct picture of one vCPU's address space (what `inspect
 * --format summary|json` show): effective rights over all levels, table and
 * leaf counts, the KPTI twin, and anomalies reported rather than hidden.
 * Built from the tree enumeration; rendered by summary.ts or as JSON.
 */
import { PERM_U, PERM_W, PERM_XD } from '../arch/x86/access.js';
import { XD_HI } from '../arch/x86/bits.js';
import { LEVEL_NAMES } from '../arch/x86/modes.js';
import { bitNames, CR0_NAMES, CR4_NAMES, canonicalHex, EFER_NAMES, hx, hx64 } from './format.js';
import { pageSizeText, translate } from './translate.js';
import { enumerate } from './tree.js';
const EXAMPLES = 3;
const DESCRIPTIONS = {
    reserved: 'present entries with reserved bits set: a walk through them faults (#PF with RSVD), so nothing below is mapped',
    'pdpte-accessed': "PAE PDPTEs with bit 5 (A) set: reserved in a PDPTE per the SDM; QEMU's TCG walker sets it; ignored as noise",
    'pdpte-reserved': 'PAE PDPTEs with reserved bits set: MOV CR3 would have raised #GP with these',
    'table-outside-ram': 'entries pointing to a page table outside guest RAM (it would read as all ones)',
    'root-outside-ram': 'the root table lies outside guest RAM: there is nothing to walk',
    'nx-above-leaf': "pages not executable although the leaf's XD=0: XD is set at a higher level (XD is ORed over the walk)",
    'us-above-leaf': 'pages supervisor-only although the leaf has U/S=1: U/S=0 at a higher level',
    'rw-above-leaf': 'pages read-only although the leaf has R/W=1: R/W=0 at a higher level',
};
export function buildReport(view, opts = {}) {
    const s = view.state;
    const img = view.image;
    const report = {
        image: {
            path: img.path,
            format: `ELF${img.elfClass} core`,
            compressed: img.compressed,
            elfBytes: img.bytes,
            machine: img.machine,
            vcpus: img.cpus.length,
            ram: img.loads.map((l) => ({ start: hx(l.paddr), end: hx(l.paddr + l.memsz), bytes: l.memsz })),
        },
        vcpu: {
            index: s.index,
            cpl: s.cpl,
            cr0: hx(s.cr0),
            cr0Flags: bitNames(s.cr0, CR0_NAMES),
            cr2: hx(s.cr2),
            cr3: hx(s.cr3),
            cr4: hx(s.cr4),
            cr4Flags: bitNames(s.cr4, CR4_NAMES),
            efer: hx(view.efer),
            eferFlags: bitNames(BigInt(view.efer), EFER_NAMES),
            eferSource: view.eferSource,
            rip: hx(s.rip),
            maxPhysAddr: view.maxPhysAddr,
            maxPhysAddrSource: view.maxPhysSource,
            inferred: view.inferred.map((i) => i.text),
        },
        paging: view.mode?.name ?? 'off',
        root: null,
        twin: null,
    };
    const fmt = view.fmt;
    if (fmt === null || view.root === null)
        return report;
    const twinKind = view.rootKind === 'kernel' ? 'user' : view.rootKind === 'user' ? 'kernel' : null;
    const root = analyze(view, fmt, view.root, view.rootKind, opts.ranges === true);
    const twin = view.twin ? analyze(view, fmt, view.twin, twinKind, opts.ranges === true) : null;
    const samples = opts.sample ? sampleTranslations(view, fmt, root) : undefined;
    return { ...report, root, twin, ...(samples ? { samples } : {}) };
}
/** Sign bit for canonical display: 47 or 56 in IA-32e paging, none for 32-bit linear addresses. */
function signBit(fmt) {
    return fmt.mode.vaBits === 57 ? 56 : fmt.mode.vaBits === 48 ? 47 : 0;
}
function analyze(view, fmt, root, kind, withRanges) {
    const mem = view.image.memory;
    const names = LEVEL_NAMES[fmt.mode.name];
    const sb = signBit(fmt);
    const va = (x) => `0x${canonicalHex(x, sb)}`;
    const frames = names.map(() => new Set());
    const leaves = new Map();
    const totals = () => ({ bytes: 0, writable: 0, executable: 0, writableAndExecutable: 0 });
    const user = totals();
    const supervisor = totals();
    const nonRam = { leaves: 0, bytes: 0 };
    const anomalies = new Map();
    const note = (k, example) => {
        let a = anomalies.get(k);
        if (a === undefined) {
            a = { kind: k, count: 0, description: DESCRIPTIONS[k], examples: [] };
            anomalies.set(k, a);
        }
        a.count++;
        if (a.examples.length < EXAMPLES)
            a.examples.push(example());
    };
    let firstUser = -1;
    let firstSupervisor = -1;
    let count = 0;
    let mapped = 0;
    const ranges = withRanges ? new RangeBuilder(va) : null;
    enumerate(mem, fmt, root, {
        table: (level, pfn) => frames[level]?.add(pfn),
        anomaly: (a) => note(a.kind, () => a.kind === 'root-outside-ram'
            ? `CR3 ${hx(root.cr3)}`
            : `${names[a.level]} for ${va(a.va)} = ${hx64(a.hi, a.lo)} (bits ${hx64(a.bitsHi, a.bitsLo)})`),
        leaf: (l) => {
            const size = 2 ** l.shift;
            count++;
            mapped += size;
            leaves.set(size, (leaves.get(size) ?? 0) + 1);
            const isUser = (l.perm & PERM_U) !== 0;
            const w = (l.perm & PERM_W) !== 0;
            const x = (l.perm & PERM_XD) === 0;
            const t = isUser ? user : supervisor;
            t.bytes += size;
            if (w)
                t.writable += size;
            if (x)
                t.executable += size;
            if (w && x)
                t.writableAndExecutable += size;
            if (isUser && firstUser < 0)
                firstUser = l.va;
            if (!isUser && firstSupervisor < 0)
                firstSupervisor = l.va;
            if (!mem.isRam(l.pfn)) {
                nonRam.leaves++;
                nonRam.bytes += size;
            }
            const example = () => `${va(l.va)} (${names[l.level]} ${hx64(l.hi, l.lo)})`;
            if (fmt.nxe && !x && (l.hi & XD_HI) === 0)
                note('nx-above-leaf', example);
            if (!isUser && (l.lo & 4) !== 0)
                note('us-above-leaf', example);
            if (!w && (l.lo & 2) !== 0)
                note('rw-above-leaf', example);
            ranges?.add(l.va, size, isUser, w, x);
        },
    });
    const tableFrames = {};
    let tableFramesTotal = 0;
    const all = new Set();
    for (let level = names.length - 1; level >= 1; level--) {
        const set = frames[level];
        if (set.size === 0)
            continue;
        tableFrames[names[level].replace(/E$/, '')] = set.size; // PDE -> PD
        for (const f of set)
            all.add(f);
    }
    tableFramesTotal = all.size;
    const bySize = {};
    for (const [size, n] of [...leaves].sort((a, b) => a[0] - b[0]))
        bySize[pageSizeText(size)] = n;
    return {
        cr3: hx(root.cr3),
        kind,
        tableFrames,
        tableFramesTotal,
        leaves: bySize,
        leafCount: count,
        mappedBytes: mapped,
        user,
        supervisor,
        nonRam,
        firstUserPage: firstUser < 0 ? null : va(firstUser),
        firstSupervisorPage: firstSupervisor < 0 ? null : va(firstSupervisor),
        anomalies: [...anomalies.values()],
        ...(ranges ? { ranges: ranges.finish() } : {}),
    };
}
/**
 * Merges leaves (in address order) into ranges of equal rights and page size,
 * then folds runs of equal ranges at a constant stride (Linux's espfix area
 * maps one page every 64 KiB, 65 536 times) into one record.
 */
class RangeBuilder {
    va;
    out = [];
    cur = null;
    /** Last emitted record, as numbers: first start, size, copies, stride. */
    last = null;
    constructor(va) {
        this.va = va;
    }
    add(start, size, user, w, x) {
        const key = (user ? 1 : 0) | (w ? 2 : 0) | (x ? 4 : 0);
        const c = this.cur;
        if (c && c.end === start && c.key === key && c.pageSize === size) {
            c.end += size;
            return;
        }
        if (c)
            this.emit(c.start, c.end - c.start, c.key, c.pageSize);
        this.cur = { start, end: start + size, key, pageSize: size };
    }
    finish() {
        const c = this.cur;
        if (c)
            this.emit(c.start, c.end - c.start, c.key, c.pageSize);
        this.cur = null;
        return this.out;
    }
    emit(start, size, key, pageSize) {
        const l = this.last;
        const rec = this.out[this.out.length - 1];
        if (l && rec && l.key === key && l.size === size && l.pageSize === pageSize) {
            const lastStart = l.start + (l.count - 1) * l.stride;
            const stride = l.count === 1 ? start - l.start : l.stride;
            if (start - lastStart === stride && stride > size) {
                l.count++;
                l.stride = stride;
                rec.count = l.count;
                rec.stride = hx(stride);
                rec.end = this.va(start + size);
                return;
            }
        }
        this.last = { start, size, key, pageSize, count: 1, stride: 0 };
        this.out.push({
            start: this.va(start),
            end: this.va(start + size),
            size: hx(size),
            pageSize,
            user: (key & 1) !== 0,
            writable: (key & 2) !== 0,
            executable: (key & 4) !== 0,
        });
    }
}
/** A few translations worth looking at: first user and supervisor pages, CR2, RIP. */
function sampleTranslations(view, fmt, space) {
    const narrow = fmt.mode.vaBits === 32; // 32-bit linear addresses: EIP, not RIP
    const out = [];
    const add = (label, va, access, cpl) => {
        if (va === null)
            return;
        const v = BigInt(va) & (narrow ? 0xffffffffn : 0xffffffffffffffffn);
        const vaHi = Number(v >> 32n);
        const vaLo = Number(v & 0xffffffffn);
        out.push({ label, translation: translate(view, { vaHi, vaLo, access, cpl }) });
    };
    const cpl = view.state.cpl;
    add('first user page, read from user mode', space.firstUserPage, 0, 3);
    add('first supervisor page, read by the kernel', space.firstSupervisorPage, 0, 0);
    add('CR2 (the last page-fault address), read at the current CPL', view.state.cr2, 0, cpl);
    add('RIP (the next instruction), fetched at the current CPL', view.state.rip, 2, cpl);
    return out;
}
//# sourceMappingURL=report.js.map