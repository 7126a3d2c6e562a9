/** End-to-end tests of `umbra workloads`, `run`, `replay` and `compare`, and of recorded traces through `trace` and `exec`. */
import './support/node.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { flatStats, pagerSummary } from '../src/metrics/stats.js';
import { defaultSpecs } from '../src/pagers/registry.js';
const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/src/cli/main.js');
const umbra = (args) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
const dir = mkdtempSync(join(tmpdir(), 'umbra-workload-cli-'));
const at = (name) => join(dir, name);
const NAMES = ['compile', 'forkexec', 'ctxswitch', 'bigmem', 'mmapchurn', 'server'];
/** Every registered pager, each by its default spec: the reference first. */
const PAGER_SPECS = ['native', ...defaultSpecs()];
function ok(r) {
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
}
/** Exit status 2, nothing on stdout, exactly one line on stderr starting `umbra: `, no stack trace. */
function failsWith(r, message) {
    assert.equal(r.status, 2, `status ${r.status}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.split('\n').length, 2, `one line: ${r.stderr}`);
    assert.ok(r.stderr.startsWith('umbra: '), r.stderr);
    assert.doesNotMatch(r.stderr, /\n\s+at |internal error/);
    if (typeof message === 'string')
        assert.ok(r.stderr.startsWith(`umbra: ${message}`), r.stderr);
    else
        assert.match(r.stderr, message);
}
/** The report's lines by their first word (e.g. "pager", "digest"), continuation lines under "calibration". */
function reportLines(stdout) {
    const m = new Map();
    let key = '';
    for (const line of stdout.trimEnd().split('\n')) {
        if (line.startsWith(' ')) {
            m.set(key, `${m.get(key)}\n${line}`);
            continue;
        }
        key = line.split(' ')[0];
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
    const stats = JSON.parse(readFileSync(at('run-stats.json'), 'utf8'));
    // The pager's own lines, as its counters declare them (exits, shadow).
    const pagerLines = pagerSummary(flatStats(stats)).map(([heading]) => heading);
    assert.deepEqual(pagerLines, ['exits', 'shadow']);
    for (const h of pagerLines)
        assert.ok(lines.has(h), h);
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
        const rstats = JSON.parse(readFileSync(at('rs.json'), 'utf8'));
        assert.deepEqual(rstats.guest, stats.guest, spec);
        assert.equal(rstats.digest, stats.digest, spec);
        if (spec === 'native')
            for (const h of pagerLines)
                assert.ok(!replayLines.has(h), `native: no ${h} line`);
    }
});
test('the trace converted to a scenario execs to exactly the recorded output', () => {
    assert.ok(existsSync(T), 'needs the trace of the previous test');
    const info = JSON.parse(ok(umbra(['trace', 'info', T, '--json'])));
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
    assert.match(String(info.trailer.digest), /^[0-9a-f]{64}$/);
    const r = umbra(['trace', 'convert', T, at('forkexec.jsonl')]);
    assert.equal(r.status, 0, r.stderr);
    const exec = umbra(['exec', at('forkexec.jsonl'), '--pager', 'native']);
    assert.equal(exec.status, 0, exec.stderr);
    assert.ok(Buffer.from(exec.stdout, 'latin1').equals(readFileSync(O)), 'exec prints the recorded output');
});
/** RFC 4180 fields of CSV text (quoted fields may hold commas, quotes and newlines). */
function parseCsv(text) {
    const rows = [];
    let row = [];
    let field = '';
    let quoted = false;
    for (let i = 0; i < text.length; i++) {
        const ch = text[i];
        if (quoted) {
            if (ch === '"' && text[i + 1] === '"') {
                field += '"';
                i++;
            }
            else if (ch === '"')
                quoted = false;
            else
                field += ch;
        }
        else if (ch === '"')
            quoted = true;
        else if (ch === ',') {
            row.push(field);
            field = '';
        }
        else if (ch === '\n') {
            row.push(field);
            rows.push(row);
            row = [];
            field = '';
        }
        else
            field += ch;
    }
    assert.ok(!quoted && field === '' && row.length === 0, 'CSV ends with a complete line');
    return rows;
}
test('compare: JSON, CSV and an SVG plot; the guest did the same under both pagers', () => {
    const svg = at('churn.svg');
    const j = JSON.parse(ok(umbra(['compare', '--workload', 'mmapchurn', '--size', '0.01', '--json', '--plot', svg])));
    assert.deepEqual(j.pagers, ['native', 'shadow']);
    assert.equal(j.baseline, 'native');
    assert.deepEqual([j.run.workload, j.run.size, j.run.seed, j.run.layout, j.run.mode], ['mmapchurn', 0.01, 1, 'identity', '4-level']);
    assert.match(j.digest, /^[0-9a-f]{64}$/);
    const keys = j.rows.map((r) => r.key);
    assert.equal(new Set(keys).size, keys.length, 'unique keys');
    const row = (k) => {
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
    for (const r of guest)
        assert.equal(r.values.shadow, r.values.native, r.key);
    assert.equal(row('guest.kills').native, 0);
    assert.equal(row('exits').native, null, 'no exits under native');
    assert.ok((row('exits').shadow ?? 0) > 0);
    assert.ok((row('cycles').shadow ?? 0) > (row('cycles').native ?? 0), 'shadow paging costs more');
    const plot = readFileSync(svg, 'utf8');
    assert.ok(plot.includes('<svg'), 'an SVG');
    const csv = parseCsv(ok(umbra(['compare', '--workload', 'mmapchurn', '--size', '0.01', '--csv'])));
    assert.deepEqual(csv[0], ['key', 'label', 'native', 'shadow']);
    for (const line of csv)
        assert.equal(line.length, 4, line.join(','));
    const byKey = new Map(csv.slice(1).map((l) => [l[0], l]));
    assert.deepEqual(csv.slice(1).map((l) => l[0]), keys, 'the same rows as the JSON');
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
    failsWith(umbra(['run', '--workload', 'forkexec', '--size', '0.01', '--pager', 'foo']), '--pager: unknown pager "foo"');
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
    failsWith(umbra(['run', '--workload', 'ctxswitch', '--size', '0.001', '--record', at('no-such-dir/t.umt')]), /no such/);
});
//# sourceMappingURL=workload-cli.test.js.map