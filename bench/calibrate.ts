/**
 * Measures the real counterpart of every built-in workload on this Linux
 * machine and writes the figures as JSON (calibrate/real.json by default),
 * which `umbra run --workload` and docs/workloads.md compare the models with.
 *
 *   npm run calibrate [-- --runs 3] [--out FILE] [--only compile,bigmem]
 *
 * Each counterpart (calibrate/programs, calibrate/project.mjs) runs `--runs`
 * times; every figure is the median. What is measured, and how:
 * - tasks created, page faults, context switches, memory-management system
 *   calls: `perf stat` with software events and tracepoints
 *   (sched:sched_process_fork, exceptions:page_fault_user,
 *   syscalls:sys_enter_{mmap,munmap,mprotect,brk,madvise,mremap}), children
 *   included;
 * - fault kinds: `perf record -e exceptions:page_fault_user`, from each
 *   fault's error code (bit 1 write, bit 4 instruction fetch; a write to a
 *   present page is counted as copy-on-write: these programs do no other
 *   write-protection);
 * - page-table pages per process: VmPTE read by an LD_PRELOADed destructor
 *   at each process's exit (calibrate/programs/ptepeek.c; a process that
 *   leaves by _exit or by exec is not seen);
 * - TLB shootdowns the run's tasks sent: tlb:tlb_flush events with reason
 *   "remote IPI send" in the recorded run (each flushes the other CPUs
 *   that may hold the mm: one IPI on a 2-CPU machine); also the "TLB" line
 *   of /proc/interrupts before and after, machine-wide (other load adds to
 *   it).
 * Needs perf (Debian: linux-perf), gcc and make, and root or
 * kernel.perf_event_paranoid <= -1 for the tracepoints.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? (process.argv[i + 1] as string) : fallback;
};
const RUNS = Number(arg('runs', '3'));
const OUT = arg('out', join(root, 'calibrate', 'real.json'));
const ONLY = arg('only', '')
  .split(',')
  .filter((x) => x !== '');

function need(tool: string, install: string): void {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
    process.stderr.write(`calibrate: ${tool} not found; install it (${install})\n`);
    process.exit(2);
  }
}
need('perf', 'apt-get install linux-perf');
need('gcc', 'apt-get install gcc');
need('make', 'apt-get install make');
need('git', 'apt-get install git');
mkdirSync(dirname(OUT), { recursive: true }); // check the output path before the long work

const work = mkdtempSync(join(tmpdir(), 'umbra-calibrate-'));
const prog = (name: string): string => join(work, name);
for (const p of ['gups', 'churn', 'server', 'pingpong']) {
  execFileSync('gcc', ['-O2', '-o', prog(p), join(root, 'calibrate', 'programs', `${p}.c`), '-lpthread']);
}
execFileSync('gcc', ['-O2', '-shared', '-fPIC', '-o', prog('ptepeek.so'), join(root, 'calibrate/programs/ptepeek.c')]);
const project = join(work, 'project');
const files = join(work, 'files');
mkdirSync(files);
for (let i = 0; i < 64; i++) writeFileSync(join(files, `f${i}`), Buffer.alloc(16 * 4096, i + 1));
execFileSync('node', [join(root, 'calibrate', 'project.mjs'), project]);

interface Counterpart {
  workload: string;
  what: string;
  cmd: string[];
  /** Run before each measured run (not measured). */
  before?: string[];
  /** Environment added for the command. */
  env?: Record<string, string>;
}

const COUNTERPARTS: Counterpart[] = [
  {
    workload: 'compile',
    what: 'make -j2 from clean of a 41-file C project (calibrate/project.mjs), gcc -O2 -g',
    cmd: ['make', '-s', '-j2', '-C', project],
    before: ['make', '-s', '-C', project, 'clean'],
  },
  {
    workload: 'forkexec',
    what: 'bash running 6,000 short commands: /bin/true, ls /, cat of a small file, in turn',
    cmd: [
      'bash',
      '-c',
      'i=0; while [ $i -lt 2000 ]; do /bin/true; ls / >/dev/null; cat /etc/hostname >/dev/null; i=$((i+1)); done',
    ],
  },
  {
    workload: 'ctxswitch',
    what: '8 forked processes in 4 pairs ping-ponging 20,000 one-byte pipe messages',
    cmd: [prog('pingpong'), '20000'],
  },
  {
    workload: 'bigmem',
    what: 'GUPS: 2,000,000 random accesses (25% writes) over a 256 MiB heap, THP off',
    cmd: [prog('gups'), '256', '2000000'],
  },
  {
    workload: 'mmapchurn',
    what: '2 processes × 5,000 rounds: map 1-64 pages, two accesses a page (70% writes), unmap',
    cmd: [prog('churn'), '5000'],
  },
  {
    workload: 'server',
    what: '4 threads serving 20,000 requests: map a 64 KiB file, read 4 pages, 24 reads of a 64 MiB cache, unmap',
    cmd: [prog('server'), files, '20000', '4'],
  },
];

// The bundled captures' own programs (fixtures/programs/README.md, scripts/capture-corpus.sh), keyed as
// `umbra run --program` names them: their real counterparts are themselves.
const fixtures = join(root, 'fixtures', 'programs');
execFileSync('cc', ['-O1', '-pthread', '-o', prog('threads'), join(fixtures, 'src', 'threads.c')]);
execFileSync('gcc', ['-O2', '-S', '-o', prog('hello.s'), join(fixtures, 'src', 'hello.c')]);
writeFileSync(
  prog('sort-input.txt'),
  Array.from({ length: 2000 }, (_, i) => `${String(((i + 1) * 7919) % 100003).padStart(8, '0')} ${i + 1}\n`).join(''),
);
// scripts/capture-corpus.sh's repository: the fixture sources committed, hello.c then changed.
const repo = prog('repo');
mkdirSync(repo);
for (const f of ['hello.c', 'threads.c']) writeFileSync(join(repo, f), readFileSync(join(fixtures, 'src', f)));
const git = (...a: string[]): void => {
  execFileSync('git', ['-C', repo, '-c', 'user.name=umbra', '-c', 'user.email=umbra@localhost', ...a], {
    stdio: 'ignore',
  });
};
git('init', '-q');
git('add', '.');
git('commit', '-qm', 'corpus');
writeFileSync(join(repo, 'hello.c'), '/* changed */\n', { flag: 'a' });
const capture = (file: string, what: string, cmd: string[]): Counterpart => ({
  workload: `program:${file}`,
  what,
  cmd,
});
COUNTERPARTS.push(
  capture('true.ump', 'true', ['true']),
  capture('ls.ump', 'ls /', ['ls', '/']),
  capture('cat.ump', 'cat of a 2 KiB source file', ['cat', join(fixtures, 'src', 'threads.c')]),
  capture('pipeline.ump', "sh -c 'ls / | wc -l'", ['sh', '-c', 'ls / | wc -l']),
  capture('threads.ump', 'the two-thread C program of fixtures/programs/src/threads.c', [prog('threads')]),
  capture('gcc.ump', 'gcc -c hello.s (the driver and as)', ['gcc', '-c', prog('hello.s'), '-o', prog('hello.o')]),
  capture('git.ump', 'git status --short in a 2-file repository with one file changed', [
    'git',
    '-C',
    repo,
    'status',
    '--short',
  ]),
  capture('sort.ump', 'sort of 2,000 lines', ['sort', prog('sort-input.txt'), '-o', prog('sorted.txt')]),
);

const MM = ['mmap', 'munmap', 'mprotect', 'brk', 'madvise', 'mremap'];
const EVENTS = [
  'page-faults',
  'context-switches',
  'sched:sched_process_fork',
  'sched:sched_process_exec',
  ...MM.map((s) => `syscalls:sys_enter_${s}`),
];

function tlbInterrupts(): number {
  const line = readFileSync('/proc/interrupts', 'utf8')
    .split('\n')
    .find((l) => l.trim().startsWith('TLB:'));
  if (line === undefined) return 0;
  return line
    .trim()
    .split(/\s+/)
    .slice(1)
    .filter((x) => /^\d+$/.test(x))
    .reduce((a, x) => a + Number(x), 0);
}

function before(c: Counterpart): void {
  if (c.before) execFileSync(c.before[0] as string, c.before.slice(1), { stdio: 'ignore' });
}

/** One measured run of each kind: counters (perf stat), fault kinds (perf record), page-table pages (preload). */
function once(c: Counterpart): Record<string, number> {
  before(c);
  const env = { ...process.env, ...c.env };
  const tlb0 = tlbInterrupts();
  const t0 = performance.now();
  const stat = spawnSync('perf', ['stat', '-x', ',', '-e', EVENTS.join(','), '--', ...c.cmd], {
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const seconds = (performance.now() - t0) / 1000;
  const tlb = tlbInterrupts() - tlb0;
  if (stat.status !== 0) throw new Error(`${c.workload}: perf stat failed: ${stat.stderr.slice(-400)}`);
  const ev: Record<string, number> = {};
  for (const l of stat.stderr.split('\n')) {
    const f = l.split(',');
    if (f.length > 3 && /^\d+$/.test(f[0] as string)) ev[f[2] as string] = Number(f[0]);
  }

  // Page-table pages in a run of its own: the preloaded library's own mappings stay out of the counts above.
  before(c);
  const pteLog = join(work, 'pte.log');
  rmSync(pteLog, { force: true });
  spawnSync(c.cmd[0] as string, c.cmd.slice(1), {
    env: { ...env, LD_PRELOAD: prog('ptepeek.so'), UMBRA_PTE_LOG: pteLog },
    stdio: 'ignore',
  });
  const ptes = existsSync(pteLog)
    ? readFileSync(pteLog, 'utf8')
        .trim()
        .split('\n')
        .map((l) => Number(l.split(' ')[1]))
        .filter((v) => v >= 0)
    : [];

  // Fault kinds from a recorded run.
  before(c);
  const data = join(work, 'pf.data');
  execFileSync(
    'perf',
    ['record', '-q', '-e', 'exceptions:page_fault_user,sched:sched_switch,tlb:tlb_flush', '-o', data, '--', ...c.cmd],
    {
      env,
      stdio: 'ignore',
    },
  );
  const script = execFileSync('perf', ['script', '-i', data, '-F', 'trace'], {
    encoding: 'utf8',
    maxBuffer: 1 << 30,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let faults = 0;
  let writes = 0;
  let fetches = 0;
  let cow = 0;
  // Shootdowns our own tasks started: the sender's "remote IPI send" flush event (one per flush of other CPUs).
  const ipiSends = [...script.matchAll(/reason:remote IPI send/g)].length;
  // A task switched out in state R was preempted (by whatever else this shared machine runs); any other state
  // blocked (a task's switch as it exits is not recorded: perf stops following it first).
  let preempted = 0;
  let blocked = 0;
  for (const m of script.matchAll(/prev_state=(\S+)/g)) {
    if ((m[1] as string).startsWith('R')) preempted++;
    else blocked++;
  }
  for (const m of script.matchAll(/error_code=0x([0-9a-f]+)/g)) {
    const e = Number.parseInt(m[1] as string, 16);
    faults++;
    if (e & 2) writes++;
    if (e & 16) fetches++;
    if ((e & 3) === 3) cow++;
  }
  return {
    seconds,
    // The process perf starts is not forked: it is counted here.
    processes_and_threads: (ev['sched:sched_process_fork'] ?? 0) + 1,
    execs: ev['sched:sched_process_exec'] ?? 0,
    page_faults: ev['page-faults'] ?? 0,
    context_switches: ev['context-switches'] ?? 0,
    context_switches_blocking: blocked,
    context_switches_preempted: preempted,
    mm_syscalls: MM.reduce((a, s) => a + (ev[`syscalls:sys_enter_${s}`] ?? 0), 0),
    ...Object.fromEntries(MM.map((s) => [`syscalls.${s}`, ev[`syscalls:sys_enter_${s}`] ?? 0])),
    tlb_shootdown_interrupts: tlb,
    tlb_shootdowns_sent: ipiSends,
    fault_write_pct: faults === 0 ? 0 : (100 * writes) / faults,
    fault_fetch_pct: faults === 0 ? 0 : (100 * fetches) / faults,
    fault_cow_pct: faults === 0 ? 0 : (100 * cow) / faults,
    pte_kib_per_process: ptes.length === 0 ? 0 : ptes.reduce((a, x) => a + x, 0) / ptes.length,
    processes_seen_at_exit: ptes.length,
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2
    ? (s[s.length >> 1] as number)
    : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};

const uname = execFileSync('uname', ['-srm'], { encoding: 'utf8' }).trim();
const gccVersion = execFileSync('gcc', ['-dumpfullversion'], { encoding: 'utf8' }).trim();
const cpus = readFileSync('/proc/cpuinfo', 'utf8').match(/^processor/gm)?.length ?? 0;
const model = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m)?.[1] ?? 'unknown';
const previous = existsSync(OUT)
  ? (JSON.parse(readFileSync(OUT, 'utf8')) as { workloads?: Record<string, unknown> })
  : {};
const workloads: Record<string, unknown> = { ...(previous.workloads ?? {}) };
for (const c of COUNTERPARTS) {
  if (ONLY.length > 0 && !ONLY.includes(c.workload)) continue;
  once(c); // warm-up: page cache, binaries
  const runs = Array.from({ length: RUNS }, () => once(c));
  const fig: Record<string, number> = {};
  for (const k of Object.keys(runs[0] as object)) fig[k] = median(runs.map((r) => r[k] as number));
  workloads[c.workload] = { what: c.what, command: c.cmd.map((x) => x.replace(work, '$WORK')).join(' '), ...fig };
  process.stderr.write(`${c.workload}: ${JSON.stringify(fig)}\n`);
}
writeFileSync(
  OUT,
  `${JSON.stringify({ machine: { kernel: uname, cpu: model, cpus, gcc: gccVersion }, runs: RUNS, workloads }, null, 1)}\n`,
);
rmSync(work, { recursive: true, force: true });
process.stderr.write(`wrote ${OUT}\n`);
