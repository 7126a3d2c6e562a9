/**
 * Every command shown in README.md and docs/ is run and its output compared
 * with what the page shows (test/support/docs.ts); `npm run docs:update`
 * refreshes the pages after a change that moves a figure.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { docCommands, docFiles, matchShown, readDoc, runDocCommand, scratch } from './support/docs.js';
const root = fileURLToPath(new URL('../..', import.meta.url));
test('the elision rules: "..." skips lines, labels find rows, extra output is reported', () => {
    const actual = ['a  1', 'b  2', 'c  3', 'd  4'];
    assert.equal(matchShown(['a  1', '...', 'c  3', '...'], actual).problem, null);
    assert.deepEqual(matchShown(['...', 'c  9', '...'], actual), {
        problem: 'shown: c  9\n  got: c  3',
        updated: ['...', 'c  3', '...'],
    });
    assert.match(matchShown(['a  1', 'b  2'], actual).problem ?? '', /goes on past/);
    assert.match(matchShown(['...', 'x  1'], actual).problem ?? '', /not in the output/);
});
const sc = scratch(root);
test.after(() => sc.dispose());
for (const file of docFiles(root)) {
    const cmds = docCommands(file, readDoc(root, file));
    if (cmds.length === 0)
        continue;
    test(`${file}: every command shown prints what is shown`, () => {
        const problems = [];
        for (const c of cmds) {
            const { problem } = matchShown(c.shown, runDocCommand(c.command, sc.dir, sc.env));
            if (problem !== null)
                problems.push(`${c.file}:${c.line}: $ ${c.command}\n  ${problem}`);
        }
        assert.deepEqual(problems, [], 'run `npm run docs:update` after checking the change is intended');
    });
}
//# sourceMappingURL=docs.test.js.map