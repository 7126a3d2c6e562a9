/**
 * A generator of *hostile but well-behaved* scenarios, for differential
 * fuzzing of pagers (src/fuzz). Hostile: the page tables are what an attacker
 * would build — tables shared by several parent entries with mixed rights
 * (user and supervisor, writable and read-only, XD on one path, different
 * keys), tables reachable at several levels (self-maps, a table that is both
 * a PT and a PD, a data frame used as a table), leaves pointing at the page
 * tables themselves and at unbacked frames (just above RAM, above 4 GiB,
 * above 2^34, just below 2^(MAXPHYADDR-12)), superpages over the tables,
 * reserved bits — and the guest churns: edits through aliases and pwrite,
 * CR3/PCID switches, paging off and on, CR4.PGE/SMEP/SMAP/PKE/PSE, EFER.NXE,
 * WP, AC, WRPKRU, on up to 64 vCPUs.
 *
 * Well behaved: every emitted line is run on a CoherenceTracker (a reference
 * machine), which says when a vCPU may hold stale translations; before such
 * a vCPU's next access the generator invalidates on it (a flush, INVPCID
 * type 2, or a MOV CR3 reload when that flushes everything) — and not
 * otherwise, so out-of-sync tables and cached shadows get exercised.
 */
import { WALK_OK, Walker, WalkResult } from '../../arch/x86/walker.js';
import { rng } from '../rng.js';
import { CoherenceTracker } from './coherence.js';
import { geometry, hx, leafAddress, vaFromIndexes } from './generate.js';
import { ScenarioParser } from './parse.js';
const PG_ON = 0x80000011;
const CR0_WP = 0x10000;
const CR0_PG = 0x80000000;
const CR4 = { pse: 1 << 4, pae: 1 << 5, pge: 1 << 7, la57: 1 << 12, pcide: 1 << 17, smep: 1 << 20, smap: 1 << 21 };
const CR4_PKE = 1 << 22;
const EFER_LME = 0x100;
const EFER_NXE = 0x800;
const XD = 1n << 63n;
export function generateHostile(seed, o) {
    const r = rng(seed);
    const pick = (xs) => xs[Math.floor(r() * xs.length)];
    const chance = (p) => r() < p;
    const int = (n) => Math.floor(r() * n);
    const g = geometry(o.mode);
    const L = g.levels;
    const long = L >= 4;
    const pae = L === 3;
    const eb = g.wide ? 8 : 4;
    const ram = o.memoryBytes / 4096;
    const maxFrame = 2 ** (o.maxphyaddr - 12);
    const firstData = 1 + o.tables;
    if (ram < firstData + 64)
        throw new RangeError('hostile: memory too small for the table pool');
    // Every line goes through the parser (so it is valid) and the tracker (so the generator knows the machine).
    const lines = [];
    const parser = new ScenarioParser('hostile');
    const emit = (line) => {
        lines.push(line);
        parser.line(line, lines.length);
        const s = parser.scenario;
        if (lines.length > 1)
            t.apply(s, s.count - 1);
    };
    emit(`{"op":"machine","vcpus":${o.vcpus},"memory":${hx(o.memoryBytes)},"maxphyaddr":${o.maxphyaddr}}`);
    const t = new CoherenceTracker(parser.scenario.machine);
    const mem = t.memory;
    // ---- entries ------------------------------------------------------------
    const pdptOffset = Array.from({ length: o.roots }, () => (pae ? 32 * int(128) : 0));
    const rootFrames = Array.from({ length: o.roots }, (_, k) => 1 + k);
    let nextTable = 1 + o.roots;
    const entryGpa = (table, level, idx) => table * 4096 + (pae && level === 3 ? (pdptOffset[rootFrames.indexOf(table)] ?? 0) : 0) + idx * eb;
    const readEntry = (gpa) => {
        const f = mem.frameForRead(Math.floor(gpa / 4096));
        const w = (gpa % 4096) / 4;
        return g.wide ? (BigInt(f[w + 1]) << 32n) | BigInt(f[w]) : BigInt(f[w]);
    };
    const target = (e) => (g.wide ? Number((e >> 12n) & 0xffffffffffn) : Number((e >> 12n) & 0xfffffn));
    const isLeaf = (e, level) => level === 1 || ((e & 0x80n) !== 0n && (g.large.includes(level) || (!g.wide && level === 2)));
    /** Unbacked frames an attacker would aim at, aligned to `span` frames. */
    const unbacked = (span) => {
        // 32-bit paging: a PTE holds 20 frame bits, a 4 MiB PDE up to 28 with PSE-36.
        const limit = g.wide ? maxFrame : span > 1 ? 2 ** (Math.min(o.maxphyaddr, 40) - 12) : 2 ** 20;
        const low = 1 + int(o.tables); // the low bits land on a table: a truncated frame number reads one
        const choices = [ram + int(64), 2 ** 20 + low, 2 ** 34 + low, limit - 1 - int(8), 2 ** (20 + int(20)) + low];
        let f = pick(choices.filter((x) => x >= ram && x < limit));
        if (f === undefined || chance(0.05))
            f = ram + int(64); // (beyond MAXPHYADDR is a reserved-bit fault)
        return Math.floor(f / span) * span;
    };
    const dataFrame = () => firstData + int(ram - firstData);
    const tableFrame = () => 1 + int(nextTable - 1);
    const rights = () => 1n | (chance(0.75) ? 2n : 0n) | (chance(0.65) ? 4n : 0n);
    const caching = () => (chance(0.1) ? BigInt(int(4) << 3) : 0n);
    const reserved = (level, large) => {
        if (!chance(0.03))
            return 0n;
        if (!g.wide)
            return large ? 1n << 21n : 0n;
        if (large && chance(0.5))
            return 1n << 13n; // below the superpage's alignment
        return o.maxphyaddr < 52 ? 1n << BigInt(o.maxphyaddr + int(52 - o.maxphyaddr)) : level === L ? 0x80n : 0n;
    };
    const fit = (v) => (g.wide ? v : v & 0xffffffffn);
    const leaf = (level) => {
        const large = level > 1;
        const span = large ? 2 ** (g.shifts[level] - 12) : 1;
        const k = int(100);
        const frame = k < 35
            ? dataFrame()
            : k < 55
                ? tableFrame() // the tables themselves (a superpage over them, from base 0)
                : k < 75
                    ? unbacked(span)
                    : k < 85
                        ? int(4)
                        : dataFrame();
        let v = rights() | caching() | leafAddress(g, large ? Math.floor(frame / span) * span : frame, level);
        if (chance(0.3))
            v |= 0x20n;
        if (chance(0.2))
            v |= 0x40n;
        if (chance(0.2))
            v |= 0x100n; // G
        if (large)
            v |= 0x80n;
        if (g.wide && chance(0.3))
            v |= XD;
        if (long && chance(0.4))
            v |= BigInt(int(16)) << 59n;
        if (chance(0.03))
            v &= ~1n;
        return fit(v | reserved(level, large));
    };
    const nonLeaf = (level, child) => {
        if (pae && level === 3)
            return (BigInt(child) << 12n) | 1n | caching() | (chance(0.03) ? 2n : 0n);
        let v = (BigInt(child) << 12n) | rights() | caching();
        if (chance(0.3))
            v |= 0x20n;
        if (g.wide && chance(0.1))
            v |= XD;
        return fit(v | reserved(level, false));
    };
    /** Tables by the level they were made for (level L: the roots). */
    const byLevel = Array.from({ length: L + 1 }, (_, l) => (l === L ? rootFrames.slice() : []));
    const childFor = (root, table, level) => {
        const k = int(100);
        const peers = byLevel[level - 1];
        if (k < 40 && nextTable < firstData) {
            peers.push(nextTable);
            return nextTable++;
        }
        if (k < 65 && peers.length > 0)
            return pick(peers); // one table, several parents (with other rights)
        if (k < 75)
            return tableFrame(); // shared, possibly at another level
        if (k < 83)
            return root; // recursive
        if (k < 88)
            return table; // points at itself
        if (k < 93)
            return unbacked(1);
        return dataFrame();
    };
    const writeEntry = (gpa, v) => emit(`{"op":"pwrite","gpa":${hx(gpa)},"size":${eb},"value":${hx(v)}}`);
    // ---- address spaces -----------------------------------------------------
    const indexCount = (level) => (level === L ? g.topIndexes : 2 ** g.bits);
    // Most indexes come from a few per level, so that paths meet in shared tables.
    const palette = [0, 1, 2, 3, 4, 5].map((l) => [0, 1, int(indexCount(l)), indexCount(l) - 1]);
    const index = (l) => (chance(0.7) ? pick(palette[l]) : int(indexCount(l)));
    const vas = [];
    const buildPath = (root, ix) => {
        let table = root;
        for (let l = L; l >= 1; l--) {
            const gpa = entryGpa(table, l, ix[l]);
            let e = readEntry(gpa);
            if ((e & 1n) === 0n) {
                const asLeaf = l === 1 || (g.large.includes(l) && chance(0.2));
                e = asLeaf ? leaf(l) : nonLeaf(l, childFor(root, table, l));
                writeEntry(gpa, e);
            }
            if (isLeaf(e, l) || target(e) >= ram)
                break;
            table = target(e);
        }
        vas.push(vaFromIndexes(g, ix));
    };
    /** A VA whose walk from `root` follows present entries (self-maps and shared tables included). */
    const explore = (rootPfn, rootLevelOffset) => {
        const ix = [0];
        for (let l = 1; l <= L; l++)
            ix.push(index(l));
        let table = rootPfn;
        for (let l = L; l >= 1 && table < ram; l--) {
            const base = table * 4096 + (l === L ? rootLevelOffset : 0);
            const present = [];
            for (let i = 0; i < indexCount(l); i++)
                if ((readEntry(base + i * eb) & 1n) !== 0n)
                    present.push(i);
            if (present.length === 0 || chance(0.05))
                break;
            ix[l] = pick(present);
            const e = readEntry(base + ix[l] * eb);
            if (isLeaf(e, l))
                break;
            table = target(e);
        }
        return vaFromIndexes(g, ix);
    };
    for (let s = 0; s < o.roots; s++) {
        const root = rootFrames[s];
        let ix = [];
        for (let p = 3 + int(10); p > 0; p--) {
            if (ix.length === 0 || chance(0.5)) {
                ix = [0];
                for (let l = 1; l <= L; l++)
                    ix.push(index(l));
            }
            else {
                ix = ix.slice();
                ix[1] = index(1);
                if (chance(0.3))
                    ix[2] = index(2);
            }
            buildPath(root, ix);
        }
    }
    /**
     * Alias paths: a second entry beside one on the path of `va`, pointing at
     * the same table with other rights (user/supervisor, writable/read-only,
     * XD), and the VA that walks through it to the same leaf.
     */
    const alias = (s, va) => {
        const ix = [0];
        for (let l = 1; l <= L; l++)
            ix.push(Number((va >> BigInt(g.shifts[l])) & BigInt(indexCount(l) - 1)));
        const path = [];
        let table = rootFrames[s];
        for (let l = L; l >= 2 && table < ram; l--) {
            const e = readEntry(entryGpa(table, l, ix[l]));
            if ((e & 1n) === 0n || isLeaf(e, l))
                break;
            path.push({ table, level: l, e });
            table = target(e);
        }
        if (path.length === 0)
            return;
        const { table: parent, level, e } = pick(path);
        const j = index(level);
        if ((readEntry(entryGpa(parent, level, j)) & 1n) !== 0n)
            return;
        const flip = pae && level === 3 ? 0n : pick([4n, 2n, 6n, g.wide ? XD : 4n]);
        writeEntry(entryGpa(parent, level, j), fit(e ^ flip));
        ix[level] = j;
        vas.push(vaFromIndexes(g, ix));
    };
    for (let s = 0; s < o.roots; s++) {
        for (const va of vas.slice())
            if (chance(0.3))
                alias(s, va);
        for (let k = 0; k < 8; k++)
            vas.push(explore(rootFrames[s], pdptOffset[s]));
    }
    // ---- paging on, every vCPU ----------------------------------------------
    const wrcr = (reg, v) => emit(`{"op":"wrcr","reg":"${reg}","value":${hx(v)}}`);
    const select = (v) => {
        if (t.cur !== v)
            emit(`{"op":"cpu","vcpu":${v}}`);
    };
    const pcids = [0, 1, 2, 3, ...Array.from({ length: 4 }, () => 4 + int(0xffc))];
    const cr3Of = (s, pcid) => BigInt(rootFrames[s] * 4096 + pdptOffset[s]) | BigInt(pcid);
    const usePcid = long && o.pcid;
    for (let v = 0; v < o.vcpus; v++) {
        select(v);
        const cr4 = (g.wide ? CR4.pae : 0) |
            (o.mode === '32-bit-pse' ? CR4.pse : 0) |
            (L === 5 ? CR4.la57 : 0) |
            (chance(0.5) ? CR4.pge : 0) |
            (long && chance(0.5) ? CR4_PKE : 0) |
            (chance(0.3) ? CR4.smep : 0) |
            (chance(0.3) ? CR4.smap : 0);
        wrcr('cr4', cr4);
        if (g.wide)
            emit(`{"op":"wrmsr","msr":"efer","value":${hx((long ? EFER_LME : 0) | (chance(0.8) ? EFER_NXE : 0))}}`);
        const s = v < o.roots && chance(0.5) ? v : int(o.roots);
        wrcr('cr3', cr3Of(s, 0));
        wrcr('cr0', PG_ON | (chance(0.7) ? CR0_WP : 0));
        if (usePcid) {
            wrcr('cr4', cr4 | CR4.pcide);
            wrcr('cr3', cr3Of(s, pick(pcids)));
        }
    }
    // ---- the guest at work --------------------------------------------------
    const walker = new Walker();
    const walk = new WalkResult();
    /** Where `va` leads on the current vCPU now (no A/D side effects), or -1. */
    const frameOf = (va) => {
        const c = t.cpu;
        const f = c.mmu.format;
        const lo = Number(va & 0xffffffffn);
        if (f === null)
            return lo >>> 12; // paging off: VA = GPA (32 bits)
        const hi = c.lma ? Number((va >> 32n) & 0xffffffffn) | 0 : 0;
        if (walker.walk(c.mmu.space, f, c.mmu.rootPfn, c.mmu.pdpte, hi, lo, walk) !== WALK_OK)
            return -1;
        return walk.pfn + ((lo >>> 12) & (2 ** (walk.shift - 12) - 1));
    };
    const invalidateIfStale = () => {
        for (let tries = 0; t.isStale(t.cur); tries++) {
            const c = t.cpu;
            const k = int(3);
            if (k === 0 && tries < 2 && (c.cr4 & (CR4.pcide | CR4.pge)) === 0 && c.mode !== null)
                wrcr('cr3', (BigInt(c.cr3Hi) << 32n) | BigInt(c.cr3Lo));
            else if (k === 1 && tries < 2)
                emit('{"op":"invpcid","type":2,"pcid":0,"va":0}');
            else
                emit('{"op":"flush"}');
        }
    };
    let lastVa = 0n;
    /** Another VA reaching the frame `va` reaches now (through other tables, with other rights), or `va`. */
    const aliasOf = (va) => {
        const f = frameOf(va);
        const others = f < 0 ? [] : vas.filter((x) => x !== va && frameOf(x) === f);
        return others.length > 0 ? pick(others) : va;
    };
    // A small working set, and aliases of it: the same frame reached through other tables and rights.
    const recent = [];
    const someVa = () => {
        const k = int(10);
        lastVa = k < 3 && recent.length > 0 ? aliasOf(pick(recent)) : k < 6 && recent.length > 0 ? pick(recent) : anyVa();
        recent.push(lastVa);
        if (recent.length > 4)
            recent.shift();
        return lastVa;
    };
    const anyVa = () => {
        const c = t.cpu;
        if (chance(0.25) && c.mode !== null) {
            const s = rootFrames.indexOf(c.cr3RootPfn);
            return explore(c.cr3RootPfn, s < 0 ? 0 : pdptOffset[s]);
        }
        if (chance(0.03))
            return BigInt(int(2 ** 32)) | (BigInt(int(2 ** 32)) << 32n); // maybe non-canonical
        return pick(vas);
    };
    const value = (size) => ((BigInt(int(2 ** 32)) << 32n) | BigInt(int(2 ** 32))) & ((1n << BigInt(8 * size)) - 1n);
    const cpl = () => (chance(0.5) ? 3 : 0);
    const access = (line) => {
        invalidateIfStale();
        emit(line);
    };
    const inPage = (va, size) => (va & ~0xfffn) | BigInt(int((4096 - size) / size + 1) * size);
    /** Rewrite a paging entry: through a guest alias if one maps the table, else by pwrite. */
    const edit = () => {
        const tables = [...t.tableFrames()];
        const table = tables.length > 0 && chance(0.8) ? pick(tables) : tableFrame();
        const level = 1 + int(L);
        const idx = index(level);
        const gpa = entryGpa(table, level, idx);
        const old = readEntry(gpa);
        let v;
        if ((old & 1n) !== 0n && chance(0.5)) {
            const flips = [1n, 2n, 4n, 0x20n, 0x40n, 0x80n, 0x100n, 0x8n];
            if (g.wide)
                flips.push(XD);
            if (long)
                flips.push(1n << BigInt(59 + int(4)));
            v = old ^ pick(flips);
        }
        else {
            v = isLeaf(old, level) || chance(0.5) ? leaf(level) : nonLeaf(level, childFor(tableFrame(), table, level));
        }
        v = fit(v);
        const alias = chance(0.6) ? vas.filter((va) => frameOf(va) === table) : [];
        if (alias.length > 0) {
            const va = (pick(alias) & ~0xfffn) | BigInt(gpa % 4096);
            access(`{"op":"write","va":${hx(va)},"size":${eb},"value":${hx(v)},"cpl":${chance(0.8) ? 0 : 3}}`);
        }
        else
            writeEntry(gpa, v);
    };
    const toggleCr4 = () => {
        const c = t.cpu;
        const bits = [CR4.smep, CR4.smap, CR4.pge, CR4.pse];
        if (long)
            bits.push(CR4_PKE, CR4.pcide);
        wrcr('cr4', (c.cr4 ^ pick(bits)) >>> 0);
    };
    // p2m operations draw from a stream of their own, so a seed's other operations stay as they were.
    const rp = rng(seed ^ 0x9e3779b9);
    for (let n = 0; n < o.ops; n++) {
        if (rp() < 0.02) {
            const tables = [...t.tableFrames()].filter((f) => f < ram);
            const first = rp() < 0.5 && tables.length > 0 ? tables[Math.floor(rp() * tables.length)] : Math.floor(rp() * ram);
            const count = Math.min(rp() < 0.8 ? 1 + Math.floor(rp() * 2) : 1 + Math.floor(rp() * 1024), ram - first);
            const type = ['ram', 'rom', 'none'][Math.floor(rp() * 3)];
            emit(`{"op":"p2m","gfn":${first},"count":${count},"type":"${type}"}`);
        }
        const c = t.cpu;
        const k = int(100);
        if (k < 24) {
            const size = pick([1, 2, 4, 8]);
            access(`{"op":"read","va":${hx(inPage(someVa(), size))},"size":${size},"cpl":${cpl()}}`);
        }
        else if (k < 37) {
            const size = pick([1, 2, 4, 8]);
            const va = inPage(someVa(), size);
            access(`{"op":"write","va":${hx(va)},"size":${size},"value":${hx(value(size))},"cpl":${cpl()}}`);
        }
        else if (k < 43) {
            access(`{"op":"fetch","va":${hx(someVa() | BigInt(int(4096)))},"cpl":${cpl()}}`);
        }
        else if (k < 57) {
            edit();
        }
        else if (k < 60) {
            emit(`{"op":"pwrite","gpa":${hx(int(ram) * 4096 + 8 * int(512))},"size":8,"value":${hx(value(8))}}`);
        }
        else if (k < 68) {
            const s = int(o.roots);
            const noFlush = usePcid && (c.cr4 & CR4.pcide) !== 0 && chance(0.5) ? 1n << 63n : 0n;
            wrcr('cr3', cr3Of(s, (c.cr4 & CR4.pcide) !== 0 ? pick(pcids) : 0) | noFlush);
        }
        else if (k < 74) {
            select(int(o.vcpus));
        }
        else if (k < 79) {
            const f = pick([...t.tableFrames(), tableFrame()]);
            if (chance(0.5))
                emit(`{"op":"pread","gpa":${hx(f * 4096 + eb * int(4096 / eb))},"size":${eb}}`);
            else
                emit(`{"op":"dump","gpa":${hx(f * 4096)},"length":${64 * (1 + int(8))}}`);
        }
        else if (k < 83) {
            toggleCr4();
        }
        else if (k < 86) {
            wrcr('cr0', (c.cr0 ^ (chance(0.6) ? CR0_WP : CR0_PG)) >>> 0);
        }
        else if (k < 88 && g.wide) {
            emit(`{"op":"wrmsr","msr":"efer","value":${hx(c.efer ^ EFER_NXE)}}`);
        }
        else if (k < 90 && long) {
            emit(`{"op":"wrpkru","value":${hx(int(2 ** 32))}}`);
        }
        else if (k < 92) {
            emit(`{"op":"setac","value":${int(2)}}`);
        }
        else if (k < 96) {
            emit(`{"op":"invlpg","va":${hx(someVa())}}`);
        }
        else {
            emit(`{"op":"invpcid","type":${int(4)},"pcid":${pick(pcids)},"va":${hx(someVa())}}`);
        }
    }
    return `${lines.join('\n')}\n`;
}
//# sourceMappingURL=hostile.js.map