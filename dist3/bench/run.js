/**
 * Umbra benchmarks (npm run bench). Single thread; each figure is the median
 * of several timed rounds after a warm-up round, so runs can be compared.
 *
 *   walks/s        random 4-level walks over the bundled real x86-64 image,
 *                  at VAs QEMU's own `info tlb` lists as mapped (full walks)
 *   tlb-hits/s     CPU.translate() of addresses resident in the TLB
 *   exec ops/s     scenario execution (parse excluded, reported apart) of a
 *                  generated 1-million-operation scenario, native pager
 *   import         time and memory to import each corpus image
 *   workloads      guest operations per second of the guest kernel's
 *                  workloads (compile, bigmem) per pager, and how the rate
 *                  changes with guest RAM (256 MiB → 64 GiB) and with the
 *                  number of processes (10 → 10,000)
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatFor, MODE_LONG4 } from '../src/arch/x86/modes.js';
import { WALK_OK, Walker, WalkResult } from '../src/arch/x86/walker.js';
import { runWorkload } from '../src/guest/kernel/run.js';
import { workload } from '../src/guest/kernel/workloads.js';
import { rng } from '../src/guest/rng.js';
import { parseScenario } from '../src/guest/scenario/parse.js';
import { runScenario } from '../src/guest/scenario/run.js';
import { Domain } from '../src/hypervisor/domain.js';
import { openImage } from '../src/import/image.js';
import { unxzFile } from '../src/import/xz.js';
import { useNodeSha256 } from '../src/io/sha256.js';
import { NativePager } from '../src/pagers/native/native.js';
import { ShadowPager } from '../src/pagers/shadow/shadow.js';
useNodeSha256();
const root = fileURLToPath(new URL('../..', import.meta.url));
const ROUNDS = Number(process.env.UMBRA_BENCH_ROUNDS ?? 5);
function median(xs) {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
}
/**
 * Run `fn` (which does `n` operations) for warm-up + ROUNDS rounds; return
 * the median operations per second of CPU time (user + system): these
 * machines are shared and wall time swings 2-5x with load, CPU time far less.
 */
function rate(n, fn) {
    fn();
    const rates = [];
    for (let r = 0; r < ROUNDS; r++) {
        const t0 = process.cpuUsage();
        fn();
        const t = process.cpuUsage(t0);
        rates.push(n / ((t.user + t.system) / 1e6));
    }
    return median(rates);
}
const fmt = (x) => `${(x / 1e6).toFixed(2)} M/s`;
const results = [];
async function walkBench() {
    const dir = join(root, 'fixtures/x86_64-4level-2');
    const image = await openImage(join(dir, 'dump.elf.xz'));
    const cpu = image.cpus[0];
    if (cpu === undefined)
        throw new Error('fixture has no vCPU');
    const tlbText = (await unxzFile(join(dir, 'tlb-cpu0.txt.xz'))).toString('utf8');
    const vas = [];
    for (const line of tlbText.split('\n')) {
        if (line.length < 17)
            continue;
        const va = BigInt(`0x${line.slice(0, 16)}`);
        vas.push([Number(va >> 32n) >>> 0, Number(va & 0xffffffffn) >>> 0]);
    }
    // Shuffle deterministically so successive walks touch unrelated tables.
    const r = rng(42);
    for (let i = vas.length - 1; i > 0; i--) {
        const j = Math.floor(r() * (i + 1));
        [vas[i], vas[j]] = [vas[j], vas[i]];
    }
    const hi = new Uint32Array(vas.map((v) => v[0]));
    const lo = new Uint32Array(vas.map((v) => v[1]));
    const fmt4 = formatFor(MODE_LONG4, 40, true, false);
    const rootPfn = Number(cpu.cr3 >> 12n) & 0xfffffff;
    const w = new Walker();
    const res = new WalkResult();
    const N = 2_000_000;
    let ok = 0;
    const walks = rate(N, () => {
        for (let i = 0, k = 0; i < N; i++, k++) {
            if (k === hi.length)
                k = 0;
            if (w.walk(image.memory, fmt4, rootPfn, null, hi[k], lo[k], res) === WALK_OK)
                ok++;
        }
    });
    if (ok === 0)
        throw new Error('no walk succeeded: the benchmark is broken');
    results.push(['4-level walks (real image, random mapped VAs)', fmt(walks), `${vas.length} VAs; goal >= 10 M/s`]);
    image.close();
}
/** A 4-level guest mapping `pages` 4 KiB pages at VA 0 (tables at 0x1000...). */
function longModeSetup(pages) {
    const memory = Math.max(0x10000000, 0x2000000 + pages * 4096);
    const lines = [`{"op":"machine","vcpus":1,"memory":"0x${memory.toString(16)}"}`];
    const pw = (gpa, v) => {
        lines.push(`{"op":"pwrite","gpa":"0x${gpa.toString(16)}","size":8,"value":"0x${v.toString(16)}"}`);
    };
    pw(0x1000, 0x2007);
    pw(0x2000, 0x3007);
    const pts = Math.ceil(pages / 512);
    for (let t = 0; t < pts; t++)
        pw(0x3000 + 8 * t, (0x10000 + t * 0x1000) | 7);
    for (let p = 0; p < pages; p++)
        pw(0x10000 + p * 8, (0x1000000 + p * 0x1000) | 7);
    lines.push('{"op":"wrcr","reg":"cr4","value":"0x20"}', '{"op":"wrmsr","msr":"efer","value":"0x900"}');
    lines.push('{"op":"wrcr","reg":"cr3","value":"0x1000"}', '{"op":"wrcr","reg":"cr0","value":"0x80010011"}');
    return lines;
}
function tlbBench() {
    const setup = longModeSetup(512);
    const chunks = [];
    const run = runScenario(parseScenario(`${setup.join('\n')}\n`, 'bench'), {
        pager: new NativePager(),
        layout: 'identity',
        seed: 0,
        out: (c) => chunks.push(c),
    });
    const cpu = run.cpus[0];
    const N = 5_000_000;
    let sum = 0;
    const hits = rate(N, () => {
        for (let i = 0; i < N; i++)
            sum += cpu.translate(0, (i & 511) << 12, 0, 0);
    });
    if (sum <= 0 || cpu.tlb.hits < N)
        throw new Error('TLB benchmark did not hit the TLB');
    results.push(['TLB-hit translations', fmt(hits), '512 resident pages; goal >= 50 M/s']);
}
/** A generated 1M-op scenario over `pages` random pages (4,096: beyond the TLB; 512: TLB-resident). */
function execBench(pages) {
    const lines = longModeSetup(pages);
    const r = rng(7);
    const ops = 1_000_000;
    for (let i = 0; i < ops; i++) {
        const va = (Math.floor(r() * pages) << 12) | (Math.floor(r() * 512) << 3);
        const k = r();
        if (k < 0.6)
            lines.push(`{"op":"read","va":${va},"size":8,"cpl":3}`);
        else if (k < 0.9)
            lines.push(`{"op":"write","va":${va},"size":8,"value":${i},"cpl":3}`);
        else if (k < 0.97)
            lines.push(`{"op":"fetch","va":${va},"cpl":3}`);
        else
            lines.push(`{"op":"invlpg","va":${va}}`);
    }
    const text = `${lines.join('\n')}\n`;
    const t0 = process.hrtime.bigint();
    const scenario = parseScenario(text, 'bench');
    const parseSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const execRate = rate(scenario.count, () => {
        runScenario(scenario, { pager: new NativePager(), layout: 'identity', seed: 0, out: () => { } });
    });
    results.push([
        `scenario execution (1M ops over ${pages} pages, native)`,
        fmt(execRate),
        `parse ${(scenario.count / parseSeconds / 1e6).toFixed(2)} M lines/s; goal >= 5 M/s`,
    ]);
    const scatter = rate(scenario.count, () => {
        runScenario(scenario, { pager: new NativePager(), layout: 'scatter', seed: 1, out: () => { } });
    });
    results.push([`scenario execution (1M ops over ${pages} pages, scattered)`, fmt(scatter), '']);
    const shadow = rate(scenario.count, () => {
        runScenario(scenario, { pager: new ShadowPager(), layout: 'identity', seed: 0, out: () => { } });
    });
    results.push([
        `scenario execution (1M ops over ${pages} pages, shadow)`,
        fmt(shadow),
        `shadow/native run time ${(execRate / shadow).toFixed(2)}x; goal <= 3x`,
    ]);
}
/** Shadow faults: first touches of many distinct pages, each fixed by the shadow pager. */
function shadowFaultBench() {
    const pages = 131072;
    const lines = longModeSetup(pages);
    for (let p = 0; p < pages; p++)
        lines.push(`{"op":"read","va":${p * 4096},"size":8,"cpl":3}`);
    const scenario = parseScenario(`${lines.join('\n')}\n`, 'bench');
    let faults = 0;
    const whole = [];
    const marginal = [];
    const time = (pager) => {
        const t0 = process.hrtime.bigint();
        runScenario(scenario, { pager, layout: 'identity', seed: 0, out: () => { } });
        return Number(process.hrtime.bigint() - t0) / 1e9;
    };
    for (let r = 0; r <= ROUNDS; r++) {
        const pager = new ShadowPager();
        const shadowSeconds = time(pager);
        const nativeSeconds = time(new NativePager());
        faults = pager.stats()['fault.fixed'];
        if (r === 0)
            continue;
        whole.push(faults / shadowSeconds);
        marginal.push(faults / Math.max(shadowSeconds - nativeSeconds, 1e-9));
    }
    if (faults < pages)
        throw new Error('shadow fault benchmark did not fault');
    results.push(['shadow faults (first touch), whole run', fmt(median(whole)), `${faults} faults per run`]);
    results.push([
        'shadow faults handled (run time beyond native)',
        fmt(median(marginal)),
        'guest walk, A/D, P2M population, shadow build; goal >= 1 M/s',
    ]);
}
/** Emulated page-table writes: the guest rewrites PTEs through an alias of its page table. */
function emulatedWriteBench() {
    const lines = longModeSetup(1024);
    // Alias: VA 0x40000000 (PDPT[1] -> PD 0x5000 -> PT 0x6000) maps the page-table frames 0x10000, 0x11000.
    const pw = (gpa, v) => {
        lines.push(`{"op":"pwrite","gpa":"0x${gpa.toString(16)}","size":8,"value":"0x${v.toString(16)}"}`);
    };
    pw(0x2008, 0x5007);
    pw(0x5000, 0x6007);
    pw(0x6000, 0x10003);
    pw(0x6008, 0x11003);
    for (let p = 0; p < 1024; p++)
        lines.push(`{"op":"read","va":${p * 4096},"size":8,"cpl":3}`);
    const N = 200000;
    for (let i = 0; i < N; i++) {
        const p = i & 1023;
        lines.push(`{"op":"write","va":${0x40000000 + p * 8},"size":8,"value":${(0x1000000 + p * 0x1000) | 7},"cpl":0}`);
    }
    const scenario = parseScenario(`${lines.join('\n')}\n`, 'bench');
    let emulated = 0;
    const runs = [];
    for (let r = 0; r <= ROUNDS; r++) {
        // Out-of-sync l1s would let these writes go direct: measure emulation with them off.
        const pager = new ShadowPager({ switches: { oos: false } });
        const t0 = process.hrtime.bigint();
        runScenario(scenario, { pager, layout: 'identity', seed: 0, out: () => { } });
        const dt = Number(process.hrtime.bigint() - t0) / 1e9;
        emulated = pager.stats()['emulate.pt_write'];
        if (r > 0)
            runs.push(emulated / dt);
    }
    if (emulated < N)
        throw new Error(`emulated-write benchmark emulated only ${emulated} writes`);
    results.push(['emulated page-table writes (whole run)', fmt(median(runs)), `${emulated} writes per run`]);
}
/**
 * Out-of-sync resyncs: an l1 (its page reachable through an alias) gets K of
 * its entries rewritten directly, then an INVLPG resyncs it; the cost per
 * round against K shows what a resync costs with few and many changes.
 */
function resyncBench() {
    for (const k of [1, 8, 64, 512]) {
        const lines = longModeSetup(512);
        const pw = (gpa, v) => {
            lines.push(`{"op":"pwrite","gpa":"0x${gpa.toString(16)}","size":8,"value":"0x${v.toString(16)}"}`);
        };
        pw(0x2008, 0x5007);
        pw(0x5000, 0x6007);
        pw(0x6000, 0x10003);
        for (let p = 0; p < 512; p++)
            lines.push(`{"op":"read","va":${p * 4096},"size":8,"cpl":3}`);
        const rounds = Math.floor(100000 / k);
        for (let r = 0; r < rounds; r++) {
            for (let i = 0; i < k; i++) {
                const p = (r * 7 + i) & 511;
                lines.push(`{"op":"write","va":${0x40000000 + p * 8},"size":8,"value":${(0x1000000 + (p ^ (r & 1)) * 0x1000) | 7},"cpl":0}`);
            }
            lines.push('{"op":"invlpg","va":0}');
        }
        const scenario = parseScenario(`${lines.join('\n')}\n`, 'bench');
        const times = [];
        let resyncs = 0;
        let changed = 0;
        for (let r = 0; r <= ROUNDS; r++) {
            const pager = new ShadowPager();
            const t0 = process.hrtime.bigint();
            runScenario(scenario, { pager, layout: 'identity', seed: 0, out: () => { } });
            const dt = Number(process.hrtime.bigint() - t0) / 1e9;
            resyncs = pager.stats()['oos.resyncs'];
            changed = pager.stats()['oos.entries_changed'];
            if (r > 0)
                times.push(dt);
        }
        if (resyncs < rounds / 2)
            throw new Error(`resync benchmark: only ${resyncs} resyncs`);
        const t = median(times);
        results.push([
            `out-of-sync rounds, ${k} entries changed per resync`,
            fmt(resyncs / t),
            `${((t / resyncs) * 1e6).toFixed(2)} µs per round (${k} direct writes + resync), ${Math.round(changed / resyncs)} changed per resync`,
        ]);
    }
}
async function importBench() {
    const corpus = join(root, '../shared/corpus/realguests');
    const dirs = existsSync(corpus) ? readdirSync(corpus).filter((d) => existsSync(join(corpus, d, 'dump.elf.xz'))) : [];
    const targets = dirs.length > 0 ? dirs.map((d) => join(corpus, d)) : [join(root, 'fixtures/x86_64-4level-2')];
    for (const d of targets) {
        global.gc?.();
        const before = process.memoryUsage();
        const t0 = process.hrtime.bigint();
        const image = await openImage(join(d, 'dump.elf.xz'));
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
        const after = process.memoryUsage();
        image.close();
        const mib = (x) => `${(x / 2 ** 20).toFixed(1)} MiB`;
        results.push([
            `import ${d.split('/').pop()}`,
            `${seconds.toFixed(2)} s`,
            `${mib(image.bytes)} ELF; heap +${mib(after.heapUsed - before.heapUsed)}, rss ${mib(after.rss)}`,
        ]);
    }
}
function domainBench() {
    // Sanity figure: pwrite/pread through a scattered 1 TiB guest stays cheap.
    const d = new Domain({ ramBytes: 2 ** 40, layout: 'scatter', seed: 3 });
    const N = 1_000_000;
    const r = rng(1);
    const gfns = Array.from({ length: 4096 }, () => Math.floor(r() * 2 ** 28));
    const touch = rate(N, () => {
        for (let i = 0; i < N; i++)
            d.guest.frameForRead(gfns[i & 4095]);
    });
    results.push([
        'guest-physical frame lookups (1 TiB scattered guest)',
        fmt(touch),
        `${d.mem.materializedFrames} frames materialized`,
    ]);
}
/** One workload run: guest operations per second (median of rounds) and the operation count. */
function workloadRate(name, size, pager, memory, rounds = Math.min(ROUNDS, 3)) {
    const w = workload(name);
    if (w === undefined)
        throw new Error(name);
    const rates = [];
    let ops = 0;
    for (let r = 0; r < rounds; r++) {
        const t0 = process.cpuUsage();
        const run = runWorkload({
            workload: w,
            params: { size, seed: 1, vcpus: w.defaults.vcpus, memory: memory ?? w.defaults.memory, thp: false },
            mode: '4-level',
            pcid: true,
            pager: pager === 'native' ? new NativePager() : new ShadowPager(),
            layout: 'identity',
        });
        const t = process.cpuUsage(t0);
        ops = run.ops;
        rates.push(run.ops / ((t.user + t.system) / 1e6));
    }
    return [median(rates), ops];
}
function workloadBench() {
    for (const [name, size] of [
        ['compile', 0.5],
        ['bigmem', 0.5],
    ]) {
        for (const pager of ['native', 'shadow']) {
            const [r, ops] = workloadRate(name, size, pager);
            results.push([
                `workload ${name} (size ${size}), ${pager}`,
                fmt(r),
                `${ops.toLocaleString('en-US')} guest operations`,
            ]);
        }
    }
    const [small] = workloadRate('compile', 0.25, 'shadow', 256 * 2 ** 20);
    const [big] = workloadRate('compile', 0.25, 'shadow', 64 * 2 ** 30);
    results.push(['compile (size 0.25), shadow, 256 MiB guest', fmt(small), '']);
    results.push([
        'compile (size 0.25), shadow, 64 GiB guest',
        fmt(big),
        `${(small / big).toFixed(2)}× slower than 256 MiB (goal ≤ 2×)`,
    ]);
    const [few] = workloadRate('forkexec', 10 / 6000, 'shadow');
    // One round: a minute of work, and the code is warm from the rounds before.
    const [many] = workloadRate('forkexec', 10000 / 6000, 'shadow', undefined, 1);
    results.push(['forkexec, shadow, 10 processes', fmt(few), '']);
    results.push([
        'forkexec, shadow, 10,000 processes',
        fmt(many),
        `${(few / many).toFixed(2)}× slower than 10 (goal ≤ 2×)`,
    ]);
}
await walkBench();
tlbBench();
execBench(512);
execBench(4096);
shadowFaultBench();
emulatedWriteBench();
resyncBench();
domainBench();
await importBench();
workloadBench();
const w = Math.max(...results.map((r) => r[0].length));
console.log(`Umbra benchmarks (node ${process.version}, median of ${ROUNDS} rounds, rates per second of CPU time)\n`);
for (const [name, value, note] of results)
    console.log(`${name.padEnd(w)}  ${value.padStart(12)}  ${note}`);
//# sourceMappingURL=run.js.map