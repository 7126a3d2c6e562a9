/**
 * `npm run fuzz`: differential fuzzing of the shadow pager against native
 * with hostile well-behaved scenarios (docs/fuzzing.md).
 *
 *   npm run fuzz [-- --time SECONDS] [--runs N] [--seed S] [--save DIR]
 *
 * Prints one line per failure and a final count; exits 1 if anything failed.
 * With --save, each minimised failure is written to DIR as a regression
 * scenario (test/regressions/ runs them all).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fuzz } from '../src/fuzz/fuzz.js';
import { useNodeSha256 } from '../src/io/sha256.js';
useNodeSha256();
const { values } = parseArgs({
    options: {
        time: { type: 'string' },
        runs: { type: 'string' },
        seed: { type: 'string', default: '1' },
        save: { type: 'string' },
    },
});
const num = (name, v) => {
    if (v === undefined)
        return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) {
        console.error(`fuzz: --${name} must be a non-negative integer`);
        process.exit(2);
    }
    return n;
};
const seed = num('seed', values.seed);
const runs = num('runs', values.runs);
const time = num('time', values.time) ?? (runs === undefined ? 60 : undefined);
/** The regression file: a header saying where it came from, then the minimised scenario. */
function regression(f) {
    const { spec, layout, seed: placement } = f.failure;
    const where = layout === 'scatter' ? `scatter seed ${placement}` : layout;
    return (`# found by npm run fuzz --seed ${f.round} (case ${f.caseNumber}); pager ${spec}; layout ${where}\n` +
        `# ${f.failure.kind}: ${f.failure.detail}\n${f.minimised ?? f.scenario}`);
}
let saved = 0;
const result = fuzz({
    seed,
    runs,
    timeMs: time === undefined ? undefined : time * 1000,
    onFailure: (f) => {
        const c = f.fuzzCase;
        const lines = (f.minimised ?? f.scenario).trimEnd().split('\n').length;
        let line = `FAIL seed ${f.round} case ${f.caseNumber}: ${c.mode}, ${c.vcpus} vCPU(s), maxphyaddr ${c.maxphyaddr}; ` +
            `${f.failure.spec} ${f.failure.layout}: ${f.failure.kind}: ${f.failure.detail.slice(0, 160)} (minimised to ${lines} lines)`;
        if (values.save !== undefined) {
            mkdirSync(values.save, { recursive: true });
            const file = join(values.save, `fuzz-${f.round}-${f.caseNumber}.jsonl`);
            writeFileSync(file, regression(f));
            line += `, saved ${file}`;
            saved++;
        }
        console.log(line);
    },
});
const perCase = result.cases === 0 ? 0 : result.ms / result.cases;
console.log(`${result.cases} cases, ${result.failures.length} failure(s)${saved ? `, ${saved} saved` : ''} in ${(result.ms / 1000).toFixed(1)} s (${perCase.toFixed(0)} ms per case, failures' shrinking included)`);
process.exit(result.failures.length === 0 ? 0 : 1);
//# sourceMappingURL=fuzz.js.map