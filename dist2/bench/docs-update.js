/**
 * npm run docs:update: re-run every command shown in README.md and docs/ and
 * rewrite the output shown under it (keeping elisions); prints what changed.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { docCommands, docFiles, matchShown, readDoc, runDocCommand, scratch, updateText, } from '../test/support/docs.js';
const root = fileURLToPath(new URL('../..', import.meta.url));
const sc = scratch(root);
try {
    for (const file of docFiles(root)) {
        const text = readDoc(root, file);
        const cmds = docCommands(file, text);
        const results = new Map();
        for (const c of cmds) {
            const { problem, updated } = matchShown(c.shown, runDocCommand(c.command, sc.dir, sc.env));
            if (problem === null)
                continue;
            process.stdout.write(`${file}:${c.line}: $ ${c.command}\n  ${problem.split('\n').join('\n  ')}\n`);
            results.set(c, updated);
        }
        if (results.size > 0)
            writeFileSync(join(root, file), updateText(text, cmds, results));
    }
}
finally {
    sc.dispose();
}
//# sourceMappingURL=docs-update.js.map