/**
 * `umbra capture`: run a command under valgrind's lackey and turn what it
 * logged into a program trace (docs/programs.md says why lackey, and how its
 * view differs from the real process).
 *
 * valgrind writes one log per process instance: with --log-file=DIR/log.%p.%n
 * a forked child writes its own (numbered after its parent's), and every
 * program a process executes starts a new valgrind, which opens log.PID.1
 * afresh — truncating the log of an earlier exec in the same process. So the
 * directory is watched and each log is renamed to seg.SEQ.PID.N as soon as it
 * appears (SEQ: order of appearance); a log that an exec overwrote before it
 * could be renamed shows as a missing log (one startup layout too many) and
 * the capture fails rather than guess. The -d debug output, which holds each
 * exec's startup layout, goes to stderr with a "--PID:1:" prefix; the
 * program's own stderr passes through.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  watch,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { createInterface } from 'node:readline';
import { ProgramWriter } from '../guest/program/file.js';
import { traceFileOutput } from '../io/trace.js';
import { CaptureError, type LogSegment, type ProcessLogs, parseLayouts, writeCapture } from './lackey.js';

export const INSTALL_HINT = 'umbra capture needs valgrind: install it with `apt-get install valgrind`';

/** The valgrind version, or null when it cannot be run. */
export function valgrindVersion(): string | null {
  const r = spawnSync('valgrind', ['--version'], { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) return null;
  return r.stdout.trim();
}

export interface CaptureResult {
  processes: number;
  threads: number;
  accesses: number;
  events: number;
  bytes: number;
  exitCode: number;
}

/** Lines of a file, read in chunks (logs run to gigabytes). */
function* fileLines(path: string): Generator<string, void, undefined> {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    let rest = '';
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      const text = rest + buf.toString('latin1', 0, n);
      const lines = text.split('\n');
      rest = lines.pop() as string;
      yield* lines;
    }
    if (rest !== '') yield rest;
  } finally {
    closeSync(fd);
  }
}

/** Run `argv` under valgrind and write the program trace to `out`. */
export async function capture(
  argv: readonly string[],
  out: string,
  opts: { keepLogs?: string; quiet?: boolean } = {},
): Promise<CaptureResult> {
  const version = valgrindVersion();
  if (version === null) throw new CaptureError(INSTALL_HINT);
  const dir = opts.keepLogs ?? mkdtempSync(join(tmpdir(), 'umbra-capture-'));
  let seq = 0;
  const setAside = (): void => {
    for (const name of readdirSync(dir)) {
      const m = /^log\.(\d+)\.(\d+)$/.exec(name);
      if (m === null) continue;
      try {
        renameSync(join(dir, name), join(dir, `seg.${String(seq).padStart(6, '0')}.${m[1]}.${m[2]}`));
        seq++;
      } catch {
        // Renamed by an earlier event.
      }
    }
  };
  const watcher = watch(dir, () => setAside());
  const stderrPath = join(dir, 'valgrind-debug.txt');
  const dbg = openSync(stderrPath, 'w');
  let rootPid = -1;
  const exitCode = await new Promise<number>((done, fail) => {
    const child = spawn(
      'valgrind',
      [
        '--tool=lackey',
        '--trace-mem=yes',
        '--trace-syscalls=yes',
        '--trace-sched=yes',
        '--trace-children=yes',
        '--vgdb=no',
        '-d',
        `--log-file=${dir}/log.%p.%n`,
        ...argv,
      ],
      { stdio: ['inherit', 'inherit', 'pipe'] },
    );
    rootPid = child.pid ?? -1;
    const rl = createInterface({ input: child.stderr });
    rl.on('line', (line) => {
      if (/^--\d+:\d+:/.test(line)) writeSync(dbg, `${line}\n`);
      else if (!opts.quiet) process.stderr.write(`${line}\n`);
    });
    child.on('error', fail);
    child.on('close', (code) => done(code ?? 1));
  });
  watcher.close();
  closeSync(dbg);
  setAside();
  try {
    const logs = new Map<number, ProcessLogs>();
    const layouts = parseLayouts(fileLines(stderrPath));
    const names = readdirSync(dir)
      .filter((n) => n.startsWith('seg.'))
      .sort();
    for (const name of names) {
      const [, , pid, n] = name.split('.').map(Number) as [number, number, number, number];
      let pl = logs.get(pid);
      if (pl === undefined) {
        pl = { pid, segments: [], layouts: layouts.get(pid) ?? [] };
        logs.set(pid, pl);
      }
      const path = join(dir, name);
      const seg: LogSegment = { name, forkPart: n >= 2, lines: () => fileLines(path) };
      // A fork child's pre-exec log comes first whatever its number.
      if (seg.forkPart) pl.segments.unshift(seg);
      else pl.segments.push(seg);
    }
    if (!logs.has(rootPid)) throw new CaptureError(`valgrind wrote no log for the command (pid ${rootPid})`);
    const files: string[] = [];
    const w = new ProgramWriter(traceFileOutput(out), {
      command: argv.join(' '),
      tool: version,
      toolOptions:
        '--tool=lackey --trace-mem=yes --trace-syscalls=yes --trace-sched=yes --trace-children=yes --vgdb=no -d',
      capturedOn: `${process.platform} ${process.arch}`,
      exitCode,
    });
    const resolver = (p: string): string => {
      try {
        return realpathSync(resolvePath(p));
      } catch {
        return p;
      }
    };
    let counts: ReturnType<typeof writeCapture>;
    try {
      counts = writeCapture(w, rootPid, logs, resolver, files);
      w.close(files, { counts });
    } catch (e) {
      rmSync(out, { force: true });
      throw e;
    }
    return {
      processes: counts.processes,
      threads: counts.threads,
      accesses: counts.accesses,
      events: w.eventCount,
      bytes: statSync(out).size,
      exitCode,
    };
  } finally {
    if (opts.keepLogs === undefined) rmSync(dir, { recursive: true, force: true });
  }
}

export { fileLines };
