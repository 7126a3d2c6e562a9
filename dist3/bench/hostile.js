/**
 * How the shadow pager's time and memory scale on hostile guests
 * (npm run bench:hostile; bench/hostile-cases.ts builds the guests).
 *
 * Each case runs at size N and 4N, under native (the baseline) and shadow,
 * each run in a fresh child process so its peak RSS is its own and a run
 * that goes quadratic is cut off at the timeout instead of hanging the
 * bench. A child reports CPU time (user + sys) and wall time of the run
 * (scenario generation and parsing excluded), peak RSS (everything
 * included), the pager's key counters and a digest of the guest's output,
 * which must be the same under every pager. The verdict is on CPU time —
 * the machine is shared and wall time swings — "linear" when 4× the input
 * costs at most 6× the time.
 *
 *   node dist/bench/hostile.js [--case NAME[,NAME]] [--quick] [--timeout SECONDS]
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { makePager } from '../src/cli/exec.js';
import { parseScenario } from '../src/guest/scenario/parse.js';
import { runScenario } from '../src/guest/scenario/run.js';
import { useNodeSha256 } from '../src/io/sha256.js';
import { emptyL1s, oosResync, sparseHuge, splinterTeardown, vcpuPool } from './hostile-cases.js';
useNodeSha256();
const SMALL_POOL = 64; // the smallest pool a pager spec accepts
const LARGE_POOL = 65536;
const POOL_COUNTERS = ['pool.frames', 'pool.evictions', 'pool.blowouts', 'exit.page_fault'];
const poolPagers = ['native', `shadow:pool=${SMALL_POOL}`, `shadow:pool=${LARGE_POOL}`];
const CASES = [
    {
        name: 'splinter',
        size: 'N 2 MiB mappings of one range, each splintered, touched, torn down',
        sizes: [512, 2048],
        quick: [128, 512],
        build: (n) => splinterTeardown(n),
        pagers: ['native', 'shadow'],
        counters: ['superpages_splintered', 'shadows_made', 'pool.blowouts', 'tlb_shootdowns'],
    },
    {
        name: 'oos-m',
        size: 'M resyncs of an l1 mapped by K = 4,096 shadow leaves',
        sizes: [5000, 20000],
        quick: [1000, 4000],
        build: (m) => oosResync(4096, m),
        pagers: ['native', 'shadow'],
        counters: ['oos.resyncs', 'rmap_entries_searched', 'oos.entries_compared'],
    },
    {
        name: 'oos-k',
        size: 'K shadow leaves mapping an l1 resynced M = 5,000 times',
        sizes: [1024, 4096],
        quick: [256, 1024],
        build: (k) => oosResync(k, 5000),
        pagers: ['native', 'shadow'],
        counters: ['oos.resyncs', 'rmap_entries_searched', 'oos.entries_compared'],
    },
    {
        name: 'pool-32bit',
        size: 'N rounds of 20 vCPUs (32-bit guest, a root each) switching CR3 and touching 8 pages',
        sizes: [50, 200],
        quick: [10, 40],
        build: (n) => vcpuPool('32-bit', 20, n),
        pagers: poolPagers,
        counters: POOL_COUNTERS,
    },
    {
        name: 'pool-4level',
        size: 'N rounds of 64 vCPUs (4-level guest, a root each) switching CR3 and touching 8 pages',
        sizes: [25, 100],
        quick: [5, 20],
        build: (n) => vcpuPool('4-level', 64, n),
        pagers: poolPagers,
        counters: POOL_COUNTERS,
    },
    {
        name: 'sparse-1tib',
        size: 'N pages written and read in a 1 TiB guest',
        sizes: [64, 256],
        quick: [16, 64],
        build: (n) => sparseHuge(n),
        pagers: ['native', 'shadow'],
        counters: ['pool.frames', 'peak_shadow_frames', 'p2m_table_frames'],
    },
    {
        name: 'empty-l1s',
        size: 'N page-directory entries naming never-written l1s, one read each',
        sizes: [200000, 800000],
        quick: [25000, 100000],
        build: (n) => emptyL1s(n),
        pagers: ['native', 'shadow'],
        counters: ['shadows_made', 'peak_shadow_frames', 'pool.frames', 'pool.blowouts'],
    },
];
function child(caseName, n, spec) {
    const c = CASES.find((x) => x.name === caseName);
    const scenario = parseScenario(c.build(n), `${caseName}-${n}`);
    const pager = makePager(spec);
    const hash = createHash('sha256');
    const buildMiB = process.resourceUsage().maxRSS / 1024;
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    let outcome = 'ok';
    let minimum;
    try {
        runScenario(scenario, { pager, layout: 'identity', seed: 0, out: (chunk) => hash.update(chunk) });
    }
    catch (e) {
        const message = e.message;
        if (!message.includes('too small'))
            throw e;
        outcome = 'refused';
        minimum = Number(/at least (\d+)/.exec(message)?.[1] ?? Number.NaN);
    }
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(c0);
    const result = {
        outcome,
        cpu: (cpu.user + cpu.system) / 1e6,
        wall,
        rssMiB: process.resourceUsage().maxRSS / 1024,
        buildMiB,
        digest: hash.digest('hex'),
        stats: pager.stats(),
        minimum,
    };
    console.log(JSON.stringify(result));
}
function spawn(caseName, n, spec, timeout) {
    const self = fileURLToPath(import.meta.url);
    const r = spawnSync(process.execPath, ['--max-old-space-size=8192', self, '--child', caseName, String(n), spec], {
        encoding: 'utf8',
        timeout: timeout * 1000,
        killSignal: 'SIGKILL',
        maxBuffer: 1 << 24,
    });
    const failed = (outcome) => ({
        outcome,
        cpu: NaN,
        wall: NaN,
        rssMiB: NaN,
        buildMiB: NaN,
        digest: '',
        stats: {},
    });
    if (r.error?.code === 'ETIMEDOUT')
        return failed(`timeout ${timeout} s`);
    if (r.status !== 0) {
        const last = r.stderr
            .trim()
            .split('\n')
            .filter((l) => /Error|error/.test(l))[0] ?? r.stderr.trim().slice(-200);
        return failed(`crashed (${r.signal ?? `status ${r.status}`}): ${last}`);
    }
    return JSON.parse(r.stdout.trim().split('\n').pop());
}
function parseArgs(argv) {
    let names = null;
    let quick = false;
    let timeout = 300;
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === '--quick')
            quick = true;
        else if (a === '--case')
            names = (argv[++i] ?? '').split(',');
        else if (a === '--timeout')
            timeout = Number(argv[++i]);
        else
            throw new Error(`unknown argument ${a} (--case NAME[,NAME] --quick --timeout SECONDS)`);
    }
    const unknown = names?.filter((n) => !CASES.some((c) => c.name === n)) ?? [];
    if (unknown.length > 0)
        throw new Error(`unknown case ${unknown} (${CASES.map((c) => c.name).join(', ')})`);
    return { cases: CASES.filter((c) => names === null || names.includes(c.name)), quick, timeout };
}
const num = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : '-');
const int = (x) => (x === undefined ? '-' : x.toLocaleString('en-US'));
/** A table row: the first `left` columns left-aligned, the rest right-aligned, the last as it is. */
function row(cells, widths, left = 3) {
    return cells.map((c, i) => (i < left ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
}
function main() {
    const argv = process.argv.slice(2);
    if (argv[0] === '--child') {
        child(argv[1], Number(argv[2]), argv[3]);
        return;
    }
    const { cases, quick, timeout } = parseArgs(argv);
    console.log(`Umbra hostile-guest scaling (node ${process.version}${quick ? ', --quick' : ''}; timeout ${timeout} s)`);
    const widths = [12, 8, 22, 9, 9, 10, 10];
    const ratios = [];
    for (const c of cases) {
        const [n1, n4] = quick ? c.quick : c.sizes;
        console.log(`\n${c.name}: ${c.size}`);
        console.log(row(['case', 'N', 'pager', 'cpu s', 'wall s', 'peak RSS', 'of it build', 'outcome, counters'], [...widths, 0]));
        const byPager = new Map();
        for (const n of [n1, n4]) {
            let nativeDigest = '';
            for (const spec of c.pagers) {
                let label = spec;
                let r = spawn(c.name, n, spec, timeout);
                if (r.outcome === 'refused') {
                    // A pool below the minimum is refused: say so, then measure at the minimum.
                    console.log(row([c.name, int(n), spec, '-', '-', '-', '-', 'refused (too small)'], [...widths, 0]));
                    const vcpus = c.name === 'pool-32bit' ? 20 : 64;
                    const min = Number.isFinite(r.minimum) ? r.minimum : 4 * vcpus + 16;
                    label = `${spec.replace(/=\d+$/, '')}=${min}`;
                    r = spawn(c.name, n, label, timeout);
                }
                if (spec === 'native')
                    nativeDigest = r.digest;
                else if (r.outcome === 'ok' && nativeDigest !== '' && r.digest !== nativeDigest)
                    r.outcome = 'OUTPUT DIFFERS';
                const counters = spec === 'native' ? '' : c.counters.map((k) => `${k} ${int(r.stats[k])}`).join(', ');
                const cells = [
                    c.name,
                    int(n),
                    label,
                    num(r.cpu),
                    num(r.wall),
                    `${num(r.rssMiB, 0)} MiB`,
                    `${num(r.buildMiB, 0)} MiB`,
                ];
                console.log(row([...cells, [r.outcome, counters].filter((s) => s !== '').join('; ')], [...widths, 0]));
                const key = spec; // a refused spec and its minimum are one series
                byPager.set(key, [...(byPager.get(key) ?? []), r]);
            }
        }
        for (const [spec, [a, b]] of byPager) {
            if (a === undefined || b === undefined)
                continue;
            const ratio = b.cpu / a.cpu;
            const verdict = !Number.isFinite(ratio) ? `no verdict (${b.outcome})` : ratio <= 6 ? 'linear' : 'superlinear';
            ratios.push([c.name, spec, num(ratio), num(b.wall / a.wall), `${num(b.rssMiB / a.rssMiB)}`, verdict]);
        }
        const native = byPager.get('native')?.[1];
        for (const spec of c.pagers.filter((p) => p !== 'native')) {
            const s = byPager.get(spec)?.[1];
            if (native !== undefined && s !== undefined) {
                ratios.push([c.name, `${spec} / native at 4N`, num(s.cpu / native.cpu), num(s.wall / native.wall), '', '']);
            }
        }
        const small = byPager.get(`shadow:pool=${SMALL_POOL}`);
        const large = byPager.get(`shadow:pool=${LARGE_POOL}`);
        if (small !== undefined && large !== undefined) {
            [0, 1].forEach((i) => {
                const ratio = small[i].cpu / large[i].cpu;
                const verdict = ratio <= 3 ? 'ok (≤ 3)' : 'pool thrashes (> 3)';
                ratios.push([c.name, `small / large pool at ${i === 0 ? 'N' : '4N'}`, num(ratio), '', '', verdict]);
            });
        }
    }
    console.log('\nscaling: time(4N) / time(N) (verdict on CPU time: linear if ≤ 6)');
    const rw = [12, 38, 9, 9, 9];
    console.log(row(['case', 'series', 'cpu ×', 'wall ×', 'RSS ×', 'verdict'], [...rw, 0], 2));
    for (const r of ratios)
        console.log(row(r, [...rw, 0], 2));
}
main();
//# sourceMappingURL=hostile.js.map