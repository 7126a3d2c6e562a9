/** End-to-end tests of `umbra workloads`, `run`, `replay` and `compare`, and of recorded traces through `trace` and `exec`. */
import './support/node.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { flatStats, pagerSummary, type StatsDocument } from '../src/metrics/stats.js';
import { defaultSpecs } from '../src/pagers/registry.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/src/cli/main.js');
const umbra = (args: string[]) =>
  spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
const dir = mkdtempSync(join(tmpdir(), 'umbra-workload-cli-'));
const at = (name: string): string => join(dir, name);

const NAMES = ['compile', 'forkexec', 'ctxswitch', 'bigmem', 'mmapchurn', 'server'];
/** Every registered pager, each by its default spec: the reference first. */
const PAGER_SPECS = ['native', ...defaultSpecs()];

function ok(r: ReturnType<typeof umbra>): string {
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/** Exit status 2, nothing on stdout, exactly one line on stderr starting `umbra: `, no stack trace. */
function failsWith(r: ReturnType<typeof umbra>, message: string | RegExp): void {
  assert.equal(r.status, 2, `status ${r.status}: ${r.stderr}`);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr.split('\n').length, 2, `one line: ${r.stderr}`);
  assert.ok(r.stderr.startsWith('umbra: '), r.stderr);
  assert.doesNotMatch(r.stderr, /\n\s+at |internal error/);
  if (typeof message === 'string') assert.ok(r.stderr.startsWith(`umbra: ${message}`), r.stderr);
  else assert.match(r.stderr, message);
}

/** The report's lines by their first word (e.g. "pager", "digest"), continuation lines under "calibration". */
function reportLines(stdout: string): Map<string, string> {
  const m = new Map<string, string>();
  let key = '';
  for (const line of stdout.trimEnd().split('\n')) {
    if (line.startsWith(' ')) {
      m.set(key, `${m.get(key)}\n${line}`);
      continue;
    }
    key = line.split(' ')[0] as string;
    assert.ok(!m.has(key), `one "${key}" line`);
    m.set(key, line);
  }
  return m;
}

test('workloads lists all six, with what they imitate', () => {
  const out = ok(umbra(['workloads']));
  const listed = out
    .split('\n')
    .filter((l) => /^[a-z]/.test(l) && !l.startsWith('knobs'))
    .map((l) => l.split(' ')[0]);
  assert.deepEqual(listed, NAMES);
  assert.equal(out.match(/imitates: /g)?.length, 6);
});

const T = at('forkexec.umt');
const O = at('forkexec.out');
let runStdout = '';

test('run records a trace; replay under every pager prints the same output and report', () => {
  const r = umbra([
    'run',
    '--workload',
    'forkexec',
    '--size',
    '0.01',
    '--pager',
    'shadow',
    '--record',
    T,
    '--output',
    O,
    '--stats-json',
    at('run-stats.json'),
  ]);
  runStdout = ok(r);
  assert.match(r.stderr, /ran [\d,]+ guest operations in [\d.]+ s .* under shadow/);
  const lines = reportLines(runStdout);
  assert.equal(lines.get('pager'), 'pager      shadow');
  assert.match(lines.get('workload') ?? '', /^workload {3}forkexec: /);
  assert.match(lines.get('digest') ?? '', /^digest {5}sha256 [0-9a-f]{64} /);
  assert.match(lines.get('processes') ?? '', /^processes {2}61 created, 0 threads, 61 execs, 0 killed;/);
  assert.doesNotMatch(runStdout, /M\/s|\d+\.\d+ s\b/, 'no timings on stdout');
  const stats = JSON.parse(readFileSync(at('run-stats.json'), 'utf8')) as StatsDocument;
  // The pager's own lines, as its counters declare them (exits, shadow).
  const pagerLines = pagerSummary(flatStats(stats)).map(([heading]) => heading);
  assert.deepEqual(pagerLines, ['exits', 'shadow']);
  for (const h of pagerLines) assert.ok(lines.has(h), h);
  assert.equal(stats.pager.spec, 'shadow');
  assert.equal(stats.run.workload, 'forkexec');
  assert.equal(stats.run.size, 0.01);
  assert.equal(`sha256 ${stats.digest}`, (lines.get('digest') ?? '').split(/\s+/).slice(1, 3).join(' '));
  assert.equal(stats.guest.processes, 61);
  assert.equal(stats.guest.kills, 0);
  const output = readFileSync(O);
  assert.ok(output.length > 0);
  assert.match(output.subarray(0, 16).toString('latin1'), /^\{"i":2,/);

  // Replay under every pager: the same guest-visible output, byte for byte, and the guest's side of the
  // report; under the recording pager, exactly what the run printed.
  for (const spec of PAGER_SPECS) {
    const out = at(`replay-${spec}.out`);
    const replayed = ok(umbra(['replay', T, '--pager', spec, '--output', out, '--stats-json', at('rs.json')]));
    if (spec === 'shadow') {
      assert.equal(replayed, runStdout);
      continue;
    }
    const replayLines = reportLines(replayed);
    assert.ok(readFileSync(out).equals(output), `${spec}: identical output files`);
    assert.equal(replayLines.get('pager'), `pager      ${spec}`);
    for (const k of ['workload', 'guest', 'digest', 'operations', 'processes', 'faults', 'syscalls', 'calibration']) {
      assert.equal(replayLines.get(k), lines.get(k), `${spec}: ${k}`);
    }
    const rstats = JSON.parse(readFileSync(at('rs.json'), 'utf8')) as StatsDocument;
    assert.deepEqual(rstats.guest, stats.guest, spec);
    assert.equal(rstats.digest, stats.digest, spec);
    if (spec === 'native') for (const h of pagerLines) assert.ok(!replayLines.has(h), `native: no ${h} line`);
  }
});

test('the trace converted to a scenario execs to exactly the recorded output', () => {
  assert.ok(existsSync(T), 'needs the trace of the previous test');
  const info = JSON.parse(ok(umbra(['trace', 'info', T, '--json']))) as Record<string, unknown>;
  assert.deepEqual(info.meta, {
    workload: 'forkexec',
    size: 0.01,
    seed: 1,
    vcpus: 2,
    memory: 512 * 2 ** 20,
    mode: '4-level',
    pcid: true,
    thp: false,
  });
  assert.match(String((info.trailer as Record<string, unknown>).digest), /^[0-9a-f]{64}$/);
  const r = umbra(['trace', 'convert', T, at('forkexec.jsonl')]);
  assert.equal(r.status, 0, r.stderr);
  const exec = umbra(['exec', at('forkexec.jsonl'), '--pager', 'native']);
  assert.equal(exec.status, 0, exec.stderr);
  assert.ok(Buffer.from(exec.stdout, 'latin1').equals(readFileSync(O)), 'exec prints the recorded output');
});

/** RFC 4180 fields of CSV text (quoted fields may hold commas, quotes and newlines). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += ch;
  }
  assert.ok(!quoted && field === '' && row.length === 0, 'CSV ends with a complete line');
  return rows;
}

interface JsonComparison {
  run: Record<string, unknown>;
  digest: string;
  baseline: string;
  pagers: string[];
  rows: Array<{ key: string; label: string; kind: string; values: Record<string, number | null> }>;
}

test('compare: JSON, CSV and an SVG plot; the guest did the same under both pagers', () => {
  const svg = at('churn.svg');
  const j = JSON.parse(
    ok(umbra(['compare', '--workload', 'mmapchurn', '--size', '0.01', '--json', '--plot', svg])),
  ) as JsonComparison;
  assert.deepEqual(j.pagers, ['native', 'shadow']);
  assert.equal(j.baseline, 'native');
  assert.deepEqual(
    [j.run.workload, j.run.size, j.run.seed, j.run.layout, j.run.mode],
    ['mmapchurn', 0.01, 1, 'identity', '4-level'],
  );
  assert.match(j.digest, /^[0-9a-f]{64}$/);
  const keys = j.rows.map((r) => r.key);
  assert.equal(new Set(keys).size, keys.length, 'unique keys');
  const row = (k: string) => {
    const r = j.rows.find((x) => x.key === k);
    assert.ok(r !== undefined, k);
    assert.deepEqual(Object.keys(r.values), ['native', 'shadow'], k);
    return r.values;
  };
  const ops = row('ops');
  assert.ok(typeof ops.native === 'number' && ops.native > 0);
  assert.equal(ops.shadow, ops.native, 'guest operations');
  const guest = j.rows.filter((r) => r.key.startsWith('guest.'));
  assert.ok(guest.length > 10);
  for (const r of guest) assert.equal(r.values.shadow, r.values.native, r.key);
  assert.equal(row('guest.kills').native, 0);
  assert.equal(row('exits').native, null, 'no exits under native');
  assert.ok((row('exits').shadow ?? 0) > 0);
  assert.ok((row('cycles').shadow ?? 0) > (row('cycles').native ?? 0), 'shadow paging costs more');
  const plot = readFileSync(svg, 'utf8');
  assert.ok(plot.includes('<svg'), 'an SVG');

  const csv = parseCsv(ok(umbra(['compare', '--workload', 'mmapchurn', '--size', '0.01', '--csv'])));
  assert.deepEqual(csv[0], ['key', 'label', 'native', 'shadow']);
  for (const line of csv) assert.equal(line.length, 4, line.join(','));
  const byKey = new Map(csv.slice(1).map((l) => [l[0], l]));
  assert.deepEqual(
    csv.slice(1).map((l) => l[0]),
    keys,
    'the same rows as the JSON',
  );
  for (const r of guest) {
    assert.deepEqual(byKey.get(r.key)?.slice(2), [String(r.values.native), String(r.values.shadow)], r.key);
  }
  assert.deepEqual(byKey.get('ops')?.slice(2), [String(ops.native), String(ops.native)]);
  assert.deepEqual(byKey.get('exits')?.slice(2, 3), [''], 'empty where a figure does not apply');
});

test('bad input: one line on stderr, status 2', () => {
  failsWith(umbra(['run', '--workload', 'nosuch']), 'unknown workload "nosuch"');
  failsWith(umbra(['run', '--workload', 'forkexec', '--size', '-1']), '--size -1');
  failsWith(umbra(['run', '--workload', 'forkexec', '--memory', '3G', '--mode', '32-bit']), '--memory');
  failsWith(umbra(['run', '--workload', 'forkexec', '--memory', '12345']), '--memory 12345');
  failsWith(
    umbra(['run', '--workload', 'forkexec', '--size', '0.01', '--pager', 'foo']),
    '--pager: unknown pager "foo"',
  );
  failsWith(umbra(['compare', '--workload', 'mmapchurn', '--pagers', 'native,foo']), '--pager: unknown pager "foo"');
  writeFileSync(at('not-a-trace.umt'), '{"op":"machine","vcpus":1,"memory":"0x100000"}\n');
  failsWith(umbra(['replay', at('not-a-trace.umt')]), /not an Umbra trace/);
  assert.ok(existsSync(T), 'needs the trace of the run test');
  const whole = readFileSync(T);
  for (const keep of [whole.length - 1, Math.floor(whole.length / 2), 20]) {
    writeFileSync(at('truncated.umt'), whole.subarray(0, keep));
    failsWith(umbra(['replay', at('truncated.umt'), '--pager', 'shadow']), /truncated/);
  }
});

test('a missing trace or an unwritable --record path is bad input too', () => {
  failsWith(umbra(['replay', at('no-such-trace.umt')]), /no such file/);
  failsWith(
    umbra(['run', '--workload', 'ctxswitch', '--size', '0.001', '--record', at('no-such-dir/t.umt')]),
    /no such/,
  );
});

test('--balloon: run reports the balloon, replay reproduces it, compare checks it under every pager', () => {
  const trace = at('balloon.umt');
  const args = ['--workload', 'bigmem', '--size', '0.01', '--memory', '128M'];
  const r = umbra([
    'run',
    ...args,
    '--balloon',
    '25%',
    '--pager',
    'shadow',
    '--record',
    trace,
    '--stats-json',
    at('b.json'),
  ]);
  const lines = reportLines(ok(r));
  assert.match(lines.get('guest') ?? '', /; size 0\.01, seed 1; balloon 32 MiB$/);
  const m =
    /^balloon {4}([\d,]+) frames given back, ([\d,]+) reclaimed, in ([\d,]+) p2m operations; at most ([\d,]+) frames \(([\d.]+) MiB\) out; (\d+) runs short of free memory, (\d+) deflations on OOM$/.exec(
      lines.get('balloon') ?? '',
    );
  assert.ok(m, lines.get('balloon'));
  const num = (i: number): number => Number((m[i] as string).replace(/,/g, ''));
  assert.ok(num(1) > 0 && num(2) > 0 && num(3) > 0, 'frames went out and came back in p2m operations');
  assert.equal(num(4), 8192, 'the balloon reached its 32 MiB target');
  const stats = JSON.parse(readFileSync(at('b.json'), 'utf8')) as StatsDocument;
  assert.equal(stats.run.balloon, 32 * 2 ** 20);
  assert.equal(stats.guest['balloon.p2m_ops'], num(3));
  assert.equal(stats.pager.counters['p2m.changes'], num(3), 'every p2m operation reached the pager');
  // The same run replayed prints the same report; under native, the same guest lines.
  assert.equal(ok(umbra(['replay', trace, '--pager', 'shadow'])), r.stdout);
  const native = reportLines(ok(umbra(['replay', trace, '--pager', 'native'])));
  for (const k of ['guest', 'digest', 'operations', 'balloon']) assert.equal(native.get(k), lines.get(k), k);
  // compare: the guest saw the same under each pager; the balloon's counters are rows.
  const j = JSON.parse(
    ok(umbra(['compare', ...args, '--balloon', '32M', '--pagers', PAGER_SPECS.join(','), '--json'])),
  ) as JsonComparison;
  assert.equal(`sha256 ${j.digest}`, (lines.get('digest') ?? '').split(/\s+/).slice(1, 3).join(' '), '32M = 25%');
  assert.ok(j.rows.some((row) => row.key === 'guest.balloon.frames_out'));
  // Without --balloon, nothing of it shows.
  assert.doesNotMatch(ok(umbra(['run', ...args])), /balloon/);
});

test('--balloon: a bad size is one line of error, exit status 2', () => {
  const args = ['run', '--workload', 'bigmem', '--size', '0.01', '--memory', '128M', '--balloon'];
  failsWith(umbra([...args, '100%']), '--balloon 100%: a percentage must be above 0 and below 100');
  failsWith(umbra([...args, '0%']), '--balloon 0%: a percentage must be above 0 and below 100');
  failsWith(umbra([...args, '128M']), "--balloon 128M: must be less than the guest's RAM (128 MiB)");
  failsWith(umbra([...args, 'lots']), '--balloon lots: give a percentage of RAM (25%) or a size (128M)');
  failsWith(umbra([...args, '1000']), '--balloon 1000: must be a multiple of 4 KiB');
  failsWith(umbra([...args, '0.0001%']), '--balloon 0.0001%: less than one 4 KiB frame');
  failsWith(umbra(['compare', '--workload', 'bigmem', '--balloon', '-5%']), /^umbra: --balloon -5%: give a percentage/);
  assert.match(ok(umbra(['workloads'])), /--balloon SIZE/);
});
