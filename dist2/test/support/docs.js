/**
 * Docs that cannot go stale: every command shown in a ```console block of
 * README.md and docs/*.md (a line starting with "$ ") is run, and what it
 * prints is compared with the lines shown under it. Shown output may elide:
 * a line "..." (or one starting with "…") stands for any number of lines, so
 * a block can show a few counters of a long --stats listing; every other line
 * must appear, in order, exactly; a note for the reader may follow a shown
 * line after "<-". `npm run docs:update` rewrites the shown
 * lines from a fresh run, keeping the elisions (a shown line is matched to
 * the output line with the same label: the text before its first run of two
 * spaces). A block preceded by `<!-- doc-test: skip -->` is illustrative and
 * not run.
 *
 * Commands run under bash in a scratch directory that links the repository's
 * examples/ and fixtures/, with `umbra` the built CLI; stdout and stderr are
 * shown together, less lines that report wall-clock time.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const SKIP = '<!-- doc-test: skip -->';
/** Output lines that depend on the wall clock. */
const VOLATILE = [/^ran [\d,]+ guest operations in [\d.]+ s/, /^(wrote|read) .* in [\d.]+ s/];
export function docFiles(root) {
    const docs = readdirSync(join(root, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .sort()
        .map((f) => join('docs', f));
    return ['README.md', ...docs];
}
/** The commands of one Markdown text. */
export function docCommands(file, text) {
    const lines = text.split('\n');
    const out = [];
    for (let i = 0; i < lines.length; i++) {
        if (lines[i] !== '```console')
            continue;
        const skip = (lines[i - 1] ?? '').trim() === SKIP || (lines[i - 2] ?? '').trim() === SKIP;
        let j = i + 1;
        let cur = null;
        for (; j < lines.length && lines[j] !== '```'; j++) {
            const l = lines[j];
            if (l.startsWith('$ ')) {
                if (cur !== null && !skip)
                    out.push(close(cur));
                cur = { file, line: j + 1, command: l.slice(2), shown: [], from: j + 1, to: j + 1 };
            }
            else if (cur !== null)
                cur.shown.push(l);
        }
        if (cur !== null && !skip)
            out.push(close(cur));
        i = j;
    }
    return out;
}
function close(c) {
    while (c.shown.length > 0 && c.shown[c.shown.length - 1] === '')
        c.shown.pop();
    c.to = c.from + c.shown.length;
    return c;
}
/** A scratch directory with examples/, fixtures/ and an `umbra` on PATH. */
export function scratch(root) {
    const dir = mkdtempSync(join(tmpdir(), 'umbra-docs-'));
    for (const d of ['examples', 'fixtures'])
        symlinkSync(join(root, d), join(dir, d));
    const bin = join(dir, '.bin');
    mkdirSync(bin);
    const shim = join(bin, 'umbra');
    writeFileSync(shim, `#!/bin/sh\nexec "${process.execPath}" "${join(root, 'dist/src/cli/main.js')}" "$@"\n`);
    chmodSync(shim, 0o755);
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, COLUMNS: '120' };
    return { dir, env, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}
/** Run a shown command; its combined output lines, without wall-clock lines or trailing blanks. */
export function runDocCommand(command, cwd, env) {
    const r = spawnSync('bash', ['-c', `(${command}) 2>&1`], { cwd, env, encoding: 'utf8', maxBuffer: 1 << 28 });
    const lines = (r.stdout ?? '').split('\n').filter((l) => !VOLATILE.some((v) => v.test(l)));
    while (lines.length > 0 && lines[lines.length - 1] === '')
        lines.pop();
    return lines;
}
const isElision = (l) => l === '...' || l.startsWith('…');
const label = (l) => l.split(/\s{2,}/)[0] ?? l;
/** A shown line may carry a note for the reader: "OUTPUT   <- note". */
const NOTE = /\s+<- .*$/;
/** Put a shown line's note back on a fresh output line, at the same column if it fits. */
function withNote(shown, fresh) {
    const m = NOTE.exec(shown);
    if (m === null)
        return fresh;
    const col = m.index + (m[0].length - m[0].trimStart().length);
    return `${fresh.padEnd(Math.max(col, fresh.length + 1))}${m[0].trimStart()}`;
}
/**
 * Compare shown lines with actual output. Returns the first mismatch (null if
 * none) and the shown lines as a fresh run would show them.
 */
export function matchShown(shown, actual) {
    const updated = [];
    let problem = null;
    let pos = 0;
    let skipping = false;
    for (const line of shown) {
        if (isElision(line)) {
            skipping = true;
            updated.push(line);
            continue;
        }
        const s = line.replace(NOTE, '');
        let k = pos;
        if (skipping) {
            while (k < actual.length && actual[k] !== s)
                k++;
            if (k === actual.length) {
                k = pos;
                while (k < actual.length && label(actual[k]) !== label(s))
                    k++;
            }
        }
        if (k >= actual.length) {
            problem ??= `shown line not in the output: ${s}`;
            updated.push(line);
            continue;
        }
        const a = actual[k];
        if (a !== s)
            problem ??= `shown: ${s}\n  got: ${a}`;
        updated.push(withNote(line, a));
        pos = k + 1;
        skipping = false;
    }
    if (!skipping && pos < actual.length) {
        problem ??= `output goes on past what is shown: ${actual[pos]}`;
        updated.push(...actual.slice(pos));
    }
    return { problem, updated };
}
/** Rewrite a Markdown text's shown outputs from fresh runs (npm run docs:update). */
export function updateText(text, cmds, results) {
    const lines = text.split('\n');
    for (const c of [...cmds].sort((a, b) => b.from - a.from)) {
        const fresh = results.get(c);
        if (fresh !== undefined)
            lines.splice(c.from, c.to - c.from, ...fresh);
    }
    return lines.join('\n');
}
export function readDoc(root, file) {
    return readFileSync(join(root, file), 'utf8');
}
//# sourceMappingURL=docs.js.map