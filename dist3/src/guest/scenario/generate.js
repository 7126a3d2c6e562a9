/**
 * A generator of random, *well-behaved* scenarios (scenario spec: after
 * changing an entry a vCPU may have cached, invalidate it on that vCPU before
 * relying on it). Their output must not depend on TLB geometry, on machine
 * placement or (later) on the pager — which is what the property tests check.
 *
 * How it keeps scenarios well behaved: the *shape* of every address space is
 * fixed when it is built (which table each non-leaf entry points to never
 * changes); edits only change flags of entries or the frame a leaf maps. So
 * the generator knows which VAs each entry serves, and after each edit it
 * invalidates exactly those VAs (plus the recursive-map VAs, whose walks reuse
 * entries in other roles) on every vCPU and for every PCID in use — or uses a
 * full flush, INVPCID or a CR4.PGE toggle instead, chosen at random.
 *
 * What it exercises: every paging mode and page size, several address spaces
 * sharing their upper (kernel) half, CR3 switches with and without PCID
 * no-flush, global pages, a recursive self-map (for PAE through a PD), an alias window
 * through which page tables are edited by ordinary writes, edits by pwrite,
 * PAE PDPTE edits, reserved bits, unbacked table pointers, protection keys,
 * SMEP/SMAP/AC/WP changes, several vCPUs, pread/dump of tables (so A/D bits
 * are observed), and p2m operations that make table and data frames ROM,
 * take them away and give them back (a p2m operation changes every entry of
 * its frames, so every vCPU flushes after one). The p2m operations draw from
 * a random stream of their own: with them off, a seed gives the same
 * scenario as it did before they existed.
 */
import { rng } from '../rng.js';
export const GEN_MODES = ['32-bit', '32-bit-pse', 'pae', '4-level', '5-level'];
/** Scenario hex literal; negative numbers are 32-bit words built with bit operators. */
export const hx = (n) => `"0x${(typeof n === 'number' && n < 0 ? n >>> 0 : n).toString(16)}"`;
export function geometry(mode) {
    switch (mode) {
        case '32-bit':
        case '32-bit-pse':
            return {
                levels: 2,
                wide: false,
                shifts: [0, 12, 22],
                bits: 10,
                topIndexes: 1024,
                vaBits: 32,
                large: mode === '32-bit-pse' ? [2] : [],
            };
        case 'pae':
            return { levels: 3, wide: true, shifts: [0, 12, 21, 30], bits: 9, topIndexes: 4, vaBits: 32, large: [2] };
        case '4-level':
            return {
                levels: 4,
                wide: true,
                shifts: [0, 12, 21, 30, 39],
                bits: 9,
                topIndexes: 512,
                vaBits: 48,
                large: [2, 3],
            };
        case '5-level':
            return {
                levels: 5,
                wide: true,
                shifts: [0, 12, 21, 30, 39, 48],
                bits: 9,
                topIndexes: 512,
                vaBits: 57,
                large: [2, 3],
            };
    }
}
/** `va` made canonical for the geometry (32-bit VAs are truncated). */
export function canonicalVa(g, va) {
    if (g.vaBits === 32)
        return va & 0xffffffffn;
    const sign = 1n << BigInt(g.vaBits - 1);
    const mask = (1n << BigInt(g.vaBits)) - 1n;
    va &= mask;
    return va & sign ? va | (((1n << 64n) - 1n) ^ mask) : va;
}
/** The canonical VA whose walk uses index `indexes[level]` at each level 1..levels. */
export function vaFromIndexes(g, indexes) {
    let va = 0n;
    for (let l = 1; l <= g.levels; l++)
        va |= BigInt(indexes[l]) << BigInt(g.shifts[l]);
    return canonicalVa(g, va);
}
/**
 * Address bits of a leaf mapping `frame` at `level`: 32-bit paging holds a
 * 20-bit frame in a PTE and, in a 4 MiB PDE, PSE-36 bits 20:13 for PA 39:32.
 */
export function leafAddress(g, frame, level) {
    if (g.wide)
        return BigInt(frame) << 12n;
    if (level === 1)
        return BigInt(frame % 0x100000) << 12n;
    return BigInt(((frame >>> 10) & 0x3ff) * 0x400000 + ((frame / 0x100000) & 0xff) * 0x2000);
}
export function generateScenario(seed, opts) {
    const r = rng(seed);
    const pick = (xs) => xs[Math.floor(r() * xs.length)];
    const chance = (p) => r() < p;
    const int = (n) => Math.floor(r() * n);
    const g = geometry(opts.mode);
    const vcpus = opts.vcpus ?? 1 + int(3);
    const spaces = opts.spaces ?? 1 + int(3);
    const memBytes = opts.memoryBytes ?? 0x800000;
    const ramFrames = memBytes / 4096;
    const long = g.levels >= 4;
    const nxe = g.wide && chance(0.8);
    const pge = chance(0.6);
    const pcide = long && chance(0.5);
    const pke = long && chance(0.5);
    const maxphy = pick([36, 40, 46, 52]);
    const lines = [`{"op":"machine","vcpus":${vcpus},"memory":${hx(memBytes)},"maxphyaddr":${maxphy}}`];
    const emit = (s) => {
        lines.push(s);
    };
    const entryBytes = g.wide ? 8 : 4;
    // Guest-physical layout: tables from gfn 0x10 up, data frames from 0x200.
    let nextTable = 0x10;
    const allocTable = () => nextTable++;
    const dataFrame = () => 0x200 + int(ramFrames - 0x200);
    const leafAddr = (frame, level) => leafAddress(g, frame, level);
    const entries = new Map();
    const key = (gfn, index) => `${gfn}:${index}`;
    const writeEntry = (gfn, index, v) => {
        emit(`{"op":"pwrite","gpa":${hx(gfn * 4096 + index * entryBytes)},"size":${entryBytes},"value":${hx(v)}}`);
    };
    const vaOf = (indexes) => vaFromIndexes(g, indexes);
    const rwus = () => {
        let f = 1n;
        if (chance(0.85))
            f |= 2n;
        if (chance(0.7))
            f |= 4n;
        return f;
    };
    const xd = (p) => (nxe && chance(p) ? 1n << 63n : 0n);
    const addrBits = (gfn) => BigInt(gfn) << 12n;
    // Build address spaces. Space 0 is built first; the others share its upper half.
    const roots = [];
    const pdptOffset = [];
    const userVas = [];
    const specialVas = [];
    const half = g.topIndexes / 2;
    const sharedTop = new Map();
    const windowGfns = [];
    const ensurePath = (root, indexes, leafLevel, leafValue, va, sharedTopEntry) => {
        const globalOk = sharedTopEntry || spaces === 1;
        // Reuses what exists: an existing leaf above leafLevel ends the path, an
        // existing table at leafLevel is followed down, so `vas` stays exact.
        let table = root;
        for (let l = g.levels; l >= 1; l--) {
            const idx = indexes[l];
            const k = key(table, idx);
            let e = entries.get(k);
            if (e === undefined && l <= leafLevel) {
                e = {
                    gfn: table,
                    index: idx,
                    level: l,
                    leaf: true,
                    value: leafValue(l),
                    vas: new Set(),
                    mutable: true,
                    globalOk,
                };
                entries.set(k, e);
                writeEntry(table, idx, e.value);
            }
            else if (e === undefined) {
                const child = allocTable();
                let flags = g.levels === 3 && l === 3 ? 1n : rwus() | (l < g.levels || !g.wide ? 0n : xd(0.1));
                if (!g.wide || l !== 3 || g.levels !== 3)
                    flags |= chance(0.2) ? 0x20n : 0n;
                // A top-level entry copied into every space must stay identical in all of
                // them (global pages rely on it): accessed from the start, never edited.
                const pinned = sharedTopEntry && l === g.levels;
                if (pinned)
                    flags |= 0x21n;
                e = {
                    gfn: table,
                    index: idx,
                    level: l,
                    leaf: false,
                    value: addrBits(child) | flags,
                    vas: new Set(),
                    mutable: !pinned,
                    globalOk,
                };
                entries.set(k, e);
                writeEntry(table, idx, e.value);
            }
            e.vas.add(va);
            if (e.leaf)
                return;
            table = Number((e.value >> 12n) & 0xffffffffffn);
        }
    };
    const leafFor = (globalOk) => (level) => {
        const large = level > 1;
        let v = rwus() | xd(0.3);
        if (chance(0.3))
            v |= 0x20n; // A
        if (chance(0.2))
            v |= 0x40n; // D
        if (chance(0.2))
            v |= 0x18n & BigInt(int(4) << 3); // PWT/PCD
        if (pge && globalOk && chance(0.3))
            v |= 0x100n; // G: only where every space maps the same
        if (large)
            v |= 0x80n;
        if (long && chance(0.4))
            v |= BigInt(int(16)) << 59n; // protection key
        if (chance(0.03))
            v = v & ~1n; // not present
        if (chance(0.03))
            v |= g.wide ? 1n << BigInt(maxphy + int(52 - maxphy)) : 1n << 21n; // maybe reserved
        const frame = large ? dataFrame() & ~((1 << (g.shifts[level] - 12)) - 1) : dataFrame();
        return v | leafAddr(frame < 0x200 ? frame + (1 << (g.shifts[level] - 12)) : frame, level);
    };
    for (let s = 0; s < spaces; s++) {
        const root = allocTable();
        roots.push(root);
        pdptOffset.push(g.levels === 3 ? 32 * int(128) : 0);
        if (s > 0) {
            for (const [idx, v] of sharedTop) {
                const e = entries.get(key(roots[0], idx));
                entries.set(key(root, idx), e);
                writeEntry(root, idx, v);
            }
        }
        // Random VA pages, clustered so that tables are shared.
        const clusters = 2 + int(3);
        for (let c = 0; c < clusters; c++) {
            const idx = [0];
            for (let l = 1; l <= g.levels; l++)
                idx.push(int(l === g.levels ? g.topIndexes : 1 << g.bits));
            const kernel = s === 0 && g.levels !== 3 && chance(0.4);
            if (kernel)
                idx[g.levels] = half + int(half);
            else if (g.levels !== 3 && idx[g.levels] >= half)
                idx[g.levels] = int(half - 1);
            if (g.levels !== 3 && idx[g.levels] === half - 1)
                idx[g.levels] = half - 2; // the alias window's slot
            const pages = 1 + int(6);
            for (let p = 0; p < pages; p++) {
                const ix = idx.slice();
                ix[1] = (idx[1] + p) % (1 << g.bits);
                let leafLevel = g.large.length > 0 && chance(0.25) ? pick(g.large) : 1;
                // A top-level leaf shared by copying would get per-space A/D bits.
                if (kernel && leafLevel === g.levels)
                    leafLevel = 1;
                const va = vaOf(ix);
                const realRoot = root;
                if (g.levels === 3) {
                    // PAE: the PDPT sits at pdptOffset inside the root frame: entries 0..3 there.
                    ix[3] = ix[3] + pdptOffset[s] / 8;
                }
                ensurePath(realRoot, ix, leafLevel, leafFor(kernel || spaces === 1), va, kernel);
                userVas.push(va);
                if (kernel)
                    sharedTop.set(idx[g.levels], entries.get(key(root, idx[g.levels]))?.value ?? 0n);
            }
        }
        if (s === 0 && g.levels !== 3) {
            // Recursive self-map at a free top-level slot, and an alias window of the table pool.
            let rIdx = half + int(half);
            while (entries.has(key(root, rIdx)))
                rIdx = (rIdx + 1) % g.topIndexes;
            const rv = addrBits(root) | 3n;
            entries.set(key(root, rIdx), {
                gfn: root,
                index: rIdx,
                level: g.levels,
                leaf: false,
                value: rv,
                vas: new Set(),
                mutable: false,
                globalOk: false,
            });
            writeEntry(root, rIdx, rv);
            sharedTop.set(rIdx, rv);
            for (let k = 0; k < 3; k++) {
                const ix = [0];
                for (let l = 1; l <= g.levels; l++)
                    ix.push(l > k + 1 ? rIdx : int(1 << g.bits));
                ix[g.levels] = rIdx;
                specialVas.push(vaOf(ix));
            }
        }
        if (s === 0 && g.levels === 3) {
            // PAE has no top-level table in memory: recurse through a page directory
            // instead (a PDE pointing at its own PD), which maps that PD's entries as PTEs.
            const pdpte = [...entries.values()].find((e) => e.gfn === root && e.level === 3 && !e.leaf);
            if (pdpte !== undefined) {
                const pd = Number((pdpte.value >> 12n) & 0xffffffffffn);
                let rIdx = int(512);
                while (entries.has(key(pd, rIdx)))
                    rIdx = (rIdx + 1) % 512;
                const rv = addrBits(pd) | 3n;
                entries.set(key(pd, rIdx), {
                    gfn: pd,
                    index: rIdx,
                    level: 2,
                    leaf: false,
                    value: rv,
                    vas: new Set(),
                    mutable: false,
                    globalOk: false,
                });
                writeEntry(pd, rIdx, rv);
                const top = pdpte.index - pdptOffset[s] / 8;
                for (let k = 0; k < 2; k++)
                    specialVas.push(vaOf([0, k === 0 ? rIdx : int(512), rIdx, top]));
            }
        }
    }
    // Alias window: the table pool mapped supervisor-writable at a fixed private slot of every space.
    const poolSize = 0x60;
    if (nextTable + 8 > 0x200)
        throw new Error('table pool exhausted');
    const windowTop = g.levels === 3 ? -1 : half - 1;
    if (windowTop >= 0) {
        const wl = allocTable();
        const chain = [wl];
        for (let l = g.levels - 1; l > 1; l--)
            chain.push(allocTable());
        // chain[0] is the level (levels-1) table, last is the page table.
        for (let i = 0; i + 1 < chain.length; i++)
            writeEntry(chain[i], 0, addrBits(chain[i + 1]) | 3n);
        const pt = chain[chain.length - 1];
        for (let k = 0; k < poolSize; k++) {
            writeEntry(pt, k, addrBits(0x10 + k) | 3n);
            windowGfns.push(0x10 + k);
        }
        for (const root of roots)
            writeEntry(root, windowTop, addrBits(wl) | 3n);
    }
    const windowVa = (gfn) => {
        const ix = [0, gfn - 0x10];
        for (let l = 2; l <= g.levels; l++)
            ix.push(0);
        ix[g.levels] = windowTop;
        return vaOf(ix);
    };
    // Enable paging on every vCPU.
    const cr3For = (s, pcid) => BigInt(roots[s] * 4096 + pdptOffset[s]) | (pcide ? BigInt(pcid) : 0n);
    const pkeBit = pke ? 1 << 22 : 0;
    const baseCr4 = (g.levels === 2 ? (opts.mode === '32-bit-pse' ? 0x10 : 0) : 0x20) |
        (g.levels === 5 ? 1 << 12 : 0) |
        (pge ? 0x80 : 0) |
        pkeBit;
    const wp = chance(0.7);
    let smep = chance(0.4);
    let smap = chance(0.4);
    const cr4Of = () => baseCr4 | (smep ? 1 << 20 : 0) | (smap ? 1 << 21 : 0);
    const current = [];
    for (let v = 0; v < vcpus; v++) {
        if (v > 0)
            emit(`{"op":"cpu","vcpu":${v}}`);
        emit(`{"op":"wrcr","reg":"cr4","value":${hx(cr4Of())}}`);
        if (g.wide)
            emit(`{"op":"wrmsr","msr":"efer","value":${hx((long ? 0x100 : 0) | (nxe ? 0x800 : 0))}}`);
        const s = int(spaces);
        current.push(s);
        emit(`{"op":"wrcr","reg":"cr3","value":${hx(BigInt(roots[s] * 4096 + pdptOffset[s]))}}`);
        emit(`{"op":"wrcr","reg":"cr0","value":${hx((wp ? 0x10000 : 0) | 0x80000011)}}`);
        if (pcide) {
            emit(`{"op":"wrcr","reg":"cr4","value":${hx(cr4Of() | (1 << 17))}}`);
            emit(`{"op":"wrcr","reg":"cr3","value":${hx(cr3For(s, s))}}`);
        }
    }
    let cur = vcpus - 1;
    const cr4Now = () => cr4Of() | (pcide ? 1 << 17 : 0);
    const sizeFor = () => pick([1, 2, 4, 8]);
    const randomVa = (writable = false) => {
        const base = writable || chance(0.85) || specialVas.length === 0 ? pick(userVas) : pick(specialVas);
        if (chance(0.02) && g.vaBits === 48)
            return base ^ (1n << 50n); // non-canonical
        return base + BigInt(int(4096));
    };
    const access = (va, size) => (va & ~0xfffn) + (va & 0xfffn) - ((va & 0xfffn) + BigInt(size) > 4096n ? BigInt(size) : 0n);
    const invalidate = (e) => {
        const how = int(10);
        const affected = [...e.vas, ...specialVas];
        for (let v = 0; v < vcpus; v++) {
            emit(`{"op":"cpu","vcpu":${v}}`);
            if (how < 2 || affected.length > 24)
                emit(`{"op":"flush"}`);
            else if (how < 3)
                emit(`{"op":"invpcid","type":2,"pcid":0,"va":0}`);
            else if (how < 4 && pge) {
                emit(`{"op":"wrcr","reg":"cr4","value":${hx(cr4Now() & ~0x80)}}`);
                emit(`{"op":"wrcr","reg":"cr4","value":${hx(cr4Now())}}`);
            }
            else {
                for (const va of affected) {
                    emit(`{"op":"invlpg","va":${hx(va & 0xffffffffffffffffn)}}`);
                    if (pcide)
                        for (let s = 0; s < spaces; s++)
                            emit(`{"op":"invpcid","type":0,"pcid":${s},"va":${hx(va)}}`);
                }
            }
        }
        emit(`{"op":"cpu","vcpu":${cur}}`);
    };
    const mutable = [...new Set(entries.values())].filter((e) => e.mutable);
    const rp = rng(seed ^ 0x9e3779b9);
    const p2mOps = opts.p2m ?? true;
    const p2m = () => {
        const tables = rp() < 0.5;
        const first = tables
            ? 0x10 + Math.floor(rp() * (nextTable - 0x10))
            : 0x200 + Math.floor(rp() * (ramFrames - 0x200));
        const count = Math.min(1 + Math.floor(rp() * (rp() < 0.8 ? 2 : 600)), ramFrames - first);
        const t = rp();
        // Tables are made ROM, never taken away: a table taken away reads as
        // all-ones entries, so an address space that uses it maps VAs otherwise
        // than the spaces whose global entries a TLB may keep across CR3
        // switches (32-bit: present global 4 MiB pages; wide entries: reserved
        // bits) — output would depend on TLB capacity.
        const none = tables ? 1 : 0.7;
        const type = t < 0.4 ? 'ram' : t < none ? 'rom' : 'none';
        emit(`{"op":"p2m","gfn":${first},"count":${count},"type":"${type}"}`);
        for (let v = 0; v < vcpus; v++) {
            emit(`{"op":"cpu","vcpu":${v}}`);
            emit(`{"op":"flush"}`);
            // As after a PDPTE edit: reload the PDPTE registers now, or a later CR4
            // write would pick up a changed PDPT behind the TLB's back.
            if (g.levels === 3)
                emit(`{"op":"wrcr","reg":"cr3","value":${hx(cr3For(current[v], 0))}}`);
        }
        emit(`{"op":"cpu","vcpu":${cur}}`);
    };
    for (let n = 0; n < opts.ops; n++) {
        if (p2mOps && rp() < 0.02)
            p2m();
        const k = int(100);
        if (k < 30) {
            const size = sizeFor();
            emit(`{"op":"read","va":${hx(access(randomVa(), size))},"size":${size},"cpl":${chance(0.5) ? 3 : 0}}`);
        }
        else if (k < 45) {
            const size = sizeFor();
            const value = BigInt(int(2 ** 31)) & ((1n << BigInt(8 * size)) - 1n);
            emit(`{"op":"write","va":${hx(access(randomVa(true), size))},"size":${size},"value":${hx(value)},"cpl":${chance(0.5) ? 3 : 0}}`);
        }
        else if (k < 52) {
            emit(`{"op":"fetch","va":${hx(randomVa())},"cpl":${chance(0.5) ? 3 : 0}}`);
        }
        else if (k < 64 && mutable.length > 0) {
            // Edit an entry: flip flags, or move a leaf to another frame.
            const e = pick(mutable);
            let v = e.value;
            const flip = pick([1n, 2n, 4n, 0x20n, 0x40n, 0x100n, 1n << 63n, 0xfn << 59n]);
            if (flip >= 1n << 59n && !(long && e.leaf))
                continue;
            if (flip === 0x100n && !(e.leaf && e.globalOk))
                continue;
            if (flip === 1n << 63n && !nxe)
                continue;
            if (g.levels === 3 && e.level === 3 && flip !== 1n)
                continue; // PDPTE: only P is not reserved
            v ^= flip;
            if (e.leaf && chance(0.3)) {
                const span = g.shifts[e.level] - 12;
                const f = dataFrame() & ~((1 << span) - 1);
                v = (v & ~(((1n << 40n) - 1n) << 12n)) | leafAddr(Math.max(f, 0x200 + (1 << span)), e.level);
            }
            if (!g.wide)
                v &= 0xffffffffn;
            e.value = v;
            const byAlias = windowTop >= 0 && windowGfns.includes(e.gfn) && chance(0.5);
            if (byAlias) {
                emit(`{"op":"write","va":${hx(windowVa(e.gfn) + BigInt(e.index * entryBytes))},"size":${entryBytes},"value":${hx(v)},"cpl":0}`);
            }
            else {
                writeEntry(e.gfn, e.index, v);
            }
            invalidate(e);
            if (g.levels === 3 && e.level === 3) {
                // PDPTE registers reload on MOV CR3 (and on some CR0/CR4 writes, which
                // do not flush the TLB): reload them everywhere now so that a later
                // CR4 write cannot pick up the edit behind the TLB's back.
                for (let v = 0; v < vcpus; v++) {
                    emit(`{"op":"cpu","vcpu":${v}}`);
                    emit(`{"op":"wrcr","reg":"cr3","value":${hx(cr3For(current[v], 0))}}`);
                }
                emit(`{"op":"cpu","vcpu":${cur}}`);
            }
        }
        else if (k < 70 && spaces > 1) {
            const s = int(spaces);
            current[cur] = s;
            const noflush = pcide && chance(0.5) ? 1n << 63n : 0n;
            emit(`{"op":"wrcr","reg":"cr3","value":${hx(cr3For(s, s) | noflush)}}`);
        }
        else if (k < 75 && vcpus > 1) {
            cur = int(vcpus);
            emit(`{"op":"cpu","vcpu":${cur}}`);
        }
        else if (k < 80) {
            const e = pick([...entries.values()]);
            emit(`{"op":"pread","gpa":${hx(e.gfn * 4096 + e.index * entryBytes)},"size":${entryBytes}}`);
        }
        else if (k < 82) {
            emit(`{"op":"dump","gpa":${hx(pick(roots) * 4096)},"length":${16 * (1 + int(8))}}`);
        }
        else if (k < 85) {
            emit(`{"op":"setac","value":${int(2)}}`);
        }
        else if (k < 88 && long) {
            emit(`{"op":"wrpkru","value":${hx(int(2 ** 31))}}`);
        }
        else if (k < 90) {
            smep = chance(0.5);
            smap = chance(0.5);
            emit(`{"op":"wrcr","reg":"cr4","value":${hx(cr4Now())}}`);
        }
        else if (k < 92) {
            emit(`{"op":"wrcr","reg":"cr0","value":${hx((chance(0.5) ? 0x10000 : 0) | 0x80000011)}}`);
        }
        else if (k < 94) {
            const gpa = 0x200 * 4096 + int((ramFrames - 0x200) * 4096 - 8);
            emit(`{"op":"pwrite","gpa":${hx(gpa & ~7)},"size":8,"value":${hx(BigInt(int(2 ** 31)))}}`);
        }
        else {
            emit(`{"op":"invlpg","va":${hx(randomVa() & 0xffffffffffffffffn)}}`);
        }
    }
    return `${lines.join('\n')}\n`;
}
//# sourceMappingURL=generate.js.map