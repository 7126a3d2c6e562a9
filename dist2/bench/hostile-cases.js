/**
 * Hostile guests for the shadow pager, as scenario text (scenario format v1)
 * built for a given size: bench/hostile.ts times them at N and 4N, and
 * test/hostile-cases.test.ts runs them tiny under native and shadow to check
 * transparency. Every guest is well behaved (it invalidates after changing an
 * entry it may have cached), so its output must not depend on the pager.
 */
import { A, D, hx, P, PS, RW, US } from '../test/support/entries.js';
/** Present, writable, user, accessed: A is set up front so walks write no flags into the tables. */
const TABLE = P | RW | US | A;
const PAGE = TABLE | D;
const MIB2 = 2 ** 21;
const GIB = 2 ** 30;
/** Scenario lines and a bump allocator of guest frames for page tables. */
class Guest {
    nextTable;
    lines;
    /** 4-level tables made so far: table gfn * 512 + index -> child table gfn. */
    children = new Map();
    constructor(memory, nextTable, vcpus = 1, maxphyaddr = 40) {
        this.nextTable = nextTable;
        this.lines = [`{"op":"machine","vcpus":${vcpus},"memory":${hx(memory)},"maxphyaddr":${maxphyaddr}}`];
    }
    op(line) {
        this.lines.push(line);
    }
    table() {
        return this.nextTable++;
    }
    pwrite(gpa, value, size = 8) {
        this.op(`{"op":"pwrite","gpa":${hx(gpa)},"size":${size},"value":${hx(value)}}`);
    }
    /** Entry `index` of table `gfn` (8-byte entries unless `size` says 4). */
    entry(gfn, index, value, size = 8) {
        this.pwrite(gfn * 4096 + index * size, value, size);
    }
    read(va, cpl = 0) {
        this.op(`{"op":"read","va":${hx(va)},"size":8,"cpl":${cpl}}`);
    }
    write(va, value) {
        this.op(`{"op":"write","va":${hx(va)},"size":8,"value":${hx(value)},"cpl":0}`);
    }
    invlpg(va) {
        this.op(`{"op":"invlpg","va":${hx(va)}}`);
    }
    /** The table below entry `index` of `gfn`, made (and linked) on first use. */
    child(gfn, index) {
        const key = gfn * 512 + index;
        let c = this.children.get(key);
        if (c === undefined) {
            c = this.table();
            this.children.set(key, c);
            this.entry(gfn, index, (BigInt(c) << 12n) | TABLE);
        }
        return c;
    }
    /**
     * Map `va` under 4-level root `root` by a leaf at `level` (1: 4 KiB, 2:
     * 2 MiB) with entry value `leaf`; returns the table holding the leaf.
     */
    map(root, va, level, leaf) {
        let t = root;
        for (let l = 4; l > level; l--)
            t = this.child(t, Math.floor(va / 2 ** (12 + 9 * (l - 1))) % 512);
        this.entry(t, Math.floor(va / 2 ** (12 + 9 * (level - 1))) % 512, leaf);
        return t;
    }
    /** Long mode with NXE on vCPU `vcpu`, root `root`. */
    boot4(root, vcpu = 0) {
        if (vcpu > 0)
            this.op(`{"op":"cpu","vcpu":${vcpu}}`);
        this.op('{"op":"wrcr","reg":"cr4","value":"0x20"}');
        this.op('{"op":"wrmsr","msr":"efer","value":"0x900"}');
        this.op(`{"op":"wrcr","reg":"cr3","value":${hx(root * 4096)}}`);
        this.op('{"op":"wrcr","reg":"cr0","value":"0x80010011"}');
    }
    text() {
        return `${this.lines.join('\n')}\n`;
    }
}
const pte = (gfn, flags) => (BigInt(gfn) << 12n) | flags;
/**
 * Flag bits toggled to make each 2 MiB mapping of the same range a different
 * fl shadow (the fl key holds the entry's low 13 bits, XD and the protection
 * key): AVL 9-11, PWT, PCD, RW, D, G, PAT, XD, PK 59-62 — 2^14 combinations,
 * none of which changes what a CPL-0 read sees (CR4.PKE is off, EFER.NXE on).
 */
const FL_BITS = [9, 10, 11, 3, 4, 1, 6, 8, 12, 63, 59, 60, 61, 62].map((b) => 1n << BigInt(b));
function flagsFor(i) {
    let f = 0n;
    FL_BITS.forEach((bit, b) => {
        if ((i >> b) & 1)
            f |= bit;
    });
    return f;
}
/**
 * Case 1: the 2 MiB guest range at 64 MiB mapped as a superpage at `n`
 * virtual addresses (64 PDEs per page directory, so n/64 directories), each
 * with different ignored/caching flags so each is its own fl shadow. An l1
 * in use sits inside the range, so every mapping is splintered. Each mapping
 * is touched at `touches` places (with prefetch, 32 fill all 512 entries of
 * its fl1), then all are torn down, last mapped first (zero written to the PDE
 * through an alias of the directories, INVLPG), and touched again.
 */
export function splinterTeardown(n, touches = 32) {
    // A 66 MiB guest: its default shadow pool (388 frames) holds fewer fl shadows than there are mappings.
    const range = (64 * 2 ** 20) / 4096; // gfn of the 2 MiB range
    const g = new Guest(64 * 2 ** 20 + MIB2, 1);
    const root = g.table();
    // The l1 inside the range maps VA 0 -> a data page; touching it makes it a shadowed table.
    const inRange = range + 0x100;
    g.map(root, 0, 2, pte(inRange, TABLE));
    g.entry(inRange, 0, pte(0x300, PAGE));
    const vas = [];
    const pdes = [];
    for (let i = 0; i < n; i++) {
        const va = 2 ** 39 + Math.floor(i / 64) * GIB + (i % 64) * MIB2;
        const pd = g.map(root, va, 2, pte(range, (PAGE | PS) ^ flagsFor(i)));
        vas.push(va);
        pdes.push([pd, Math.floor(va / MIB2) % 512]);
    }
    // Alias: VA 1 GiB + gfn * 4 KiB maps table frame gfn, so the guest can write its directories.
    const alias = (gfn) => GIB + gfn * 4096;
    const tables = g.table();
    for (let t = 1; t < tables; t++)
        g.map(root, alias(t), 1, pte(t, PAGE));
    g.boot4(root);
    g.read(0);
    for (const va of vas) {
        for (let t = 0; t < touches; t++)
            g.read(va + Math.floor((t * 512) / touches) * 4096);
        g.read(0); // keeps the l1 in the range shadowed (a pool blowout may have dropped it), so mappings stay splintered
    }
    for (let i = n - 1; i >= 0; i--) {
        const [pd, index] = pdes[i];
        g.write(alias(pd) + index * 8, 0n);
        g.invlpg(vas[i]);
    }
    for (const va of vas)
        g.read(va);
    return g.text();
}
/**
 * Case 2: an l1 T (mapping VA 0) also mapped as a data page at `k` VAs
 * (through k/512 l1s), all touched; then `m` rounds of: write an unused entry
 * of T through one of those mappings (T goes out of sync), INVLPG (resync,
 * which write-protects T again in every shadow mapping it).
 */
export function oosResync(k, m) {
    const g = new Guest(256 * 2 ** 20, 1);
    const root = g.table();
    const t = g.map(root, 0, 1, pte(0x8000, PAGE));
    const base = GIB;
    for (let j = 0; j < k; j++)
        g.map(root, base + j * 4096, 1, pte(t, PAGE));
    g.boot4(root);
    g.read(0);
    for (let j = 0; j < k; j++)
        g.read(base + j * 4096);
    for (let r = 0; r < m; r++) {
        // Entry 511 of T (VA 511 * 4 KiB) is never used: alternate a mapping and nothing.
        g.write(base + 511 * 8, r & 1 ? pte(0x8001, PAGE) : 0n);
        g.invlpg(0);
    }
    return g.text();
}
/**
 * Case 3: `vcpus` vCPUs, each on its own root (a 32-bit guest's page
 * directory, or a 4-level PML4), sharing the tables below; `rounds` times
 * every vCPU reloads CR3 (a context switch) and touches 8 pages in 4 page
 * tables. Run it with a small and a large shadow pool.
 */
export function vcpuPool(mode, vcpus, rounds) {
    const g = new Guest(64 * 2 ** 20, 1, vcpus);
    const data = 0x1000;
    const roots = Array.from({ length: vcpus }, () => g.table());
    const vaOf = (j, e) => j * 4 * 2 ** 20 + e * 4096;
    if (mode === '32-bit') {
        const pts = [0, 1, 2, 3].map(() => g.table());
        pts.forEach((pt, j) => {
            for (let e = 0; e < 16; e++)
                g.entry(pt, e, pte(data + j * 16 + e, PAGE), 4);
            for (const r of roots)
                g.entry(r, j, pte(pt, TABLE), 4);
        });
    }
    else {
        // The first root builds the shared PDPT/PD/PTs; the others point at its PDPT.
        const r0 = roots[0];
        for (let j = 0; j < 4; j++)
            for (let e = 0; e < 16; e++)
                g.map(r0, vaOf(j, e), 1, pte(data + j * 16 + e, PAGE));
        const pdpt = g.child(r0, 0);
        for (const r of roots.slice(1))
            g.entry(r, 0, pte(pdpt, TABLE));
    }
    const cr3 = (r) => `{"op":"wrcr","reg":"cr3","value":${hx(r * 4096)}}`;
    roots.forEach((r, v) => {
        if (mode === '4-level')
            g.boot4(r, v);
        else {
            g.op(`{"op":"cpu","vcpu":${v}}`);
            g.op(cr3(r));
            g.op('{"op":"wrcr","reg":"cr0","value":"0x80010011"}');
        }
    });
    for (let i = 0; i < rounds; i++) {
        roots.forEach((r, v) => {
            g.op(`{"op":"cpu","vcpu":${v}}`);
            g.op(cr3(r));
            for (let j = 0; j < 4; j++) {
                g.read(vaOf(j, (i + v) % 16));
                g.read(vaOf(j, (i + v + 8) % 16));
            }
        });
    }
    return g.text();
}
/** Case 4a: a 1 TiB guest (MAXPHYADDR 48) that writes then reads `pages` pages spread over its RAM. */
export function sparseHuge(pages) {
    const frames = 2 ** 28;
    const g = new Guest(frames * 4096, 1, 1, 48);
    const root = g.table();
    const gfns = Array.from({ length: pages }, (_, i) => Math.floor(((i + 0.5) * frames) / pages));
    for (const [i, gfn] of gfns.entries())
        g.map(root, i * 4096, 1, pte(gfn, PAGE));
    g.boot4(root);
    for (const [i, gfn] of gfns.entries())
        g.write(i * 4096, BigInt(gfn));
    for (let i = 0; i < pages; i++)
        g.read(i * 4096);
    return g.text();
}
/**
 * Case 4b: page directories with `n` present entries, each naming its own
 * never-written (all-zero) frame as a page table; one read per entry, each a
 * not-present fault at l1.
 */
export function emptyL1s(n) {
    const first = 0x1000; // the empty l1s: gfn first .. first + n - 1, above the tables
    const g = new Guest(Math.ceil((first + n) / 256) * 256 * 4096, 1);
    const root = g.table();
    for (let i = 0; i < n; i++)
        g.map(root, i * MIB2, 2, pte(first + i, TABLE));
    if (g.table() >= first)
        throw new Error(`emptyL1s(${n}): the tables overlap the empty l1s`);
    g.boot4(root);
    for (let i = 0; i < n; i++)
        g.read(i * MIB2);
    return g.text();
}
//# sourceMappingURL=hostile-cases.js.map