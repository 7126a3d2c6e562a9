/**
 * Delta debugging (Zeller's ddmin) over the lines of a failing scenario: drop
 * chunks of operations, then single ones, while the scenario still parses,
 * stays well behaved (a shorter scenario may rely on an invalidation it no
 * longer has, and then differences are legitimate) and still fails. The
 * machine line is kept.
 */
import { staleAccess } from '../guest/scenario/coherence.js';
import { parseScenario } from '../guest/scenario/parse.js';
/** Is this scenario text a valid, well-behaved scenario? */
export function acceptable(text) {
    try {
        parseScenario(text, 'scenario');
    }
    catch {
        return false;
    }
    return staleAccess(text) === null;
}
/**
 * The smallest scenario found (1-minimal over lines, within `budget` calls of
 * `fails`) that is acceptable and for which `fails` holds. `text` must fail.
 */
export function minimiseLines(text, fails, budget = 2000) {
    const all = text.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
    const head = all[0];
    let body = all.slice(1);
    const join = (ls) => `${[head, ...ls].join('\n')}\n`;
    let calls = 0;
    const test = (ls) => {
        if (calls >= budget)
            return false;
        calls++;
        const t = join(ls);
        return acceptable(t) && fails(t);
    };
    let n = 2;
    while (body.length >= 2 && calls < budget) {
        const size = Math.ceil(body.length / n);
        let reduced = false;
        for (let start = 0; start < body.length; start += size) {
            const rest = [...body.slice(0, start), ...body.slice(start + size)];
            if (test(rest)) {
                body = rest;
                n = Math.max(n - 1, 2);
                reduced = true;
                break;
            }
        }
        if (!reduced) {
            if (size === 1)
                break;
            n = Math.min(n * 2, body.length);
        }
    }
    if (body.length === 1 && test([]))
        body = [];
    return join(body);
}
//# sourceMappingURL=minimise.js.map