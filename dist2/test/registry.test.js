/**
 * The pager registry (src/pagers/registry.ts): what the tests that follow it
 * rely on — every variant and every sample spec builds, and each pager's
 * sample (for tests too slow to run every variant) holds its default spec,
 * each switch flipped once from its default, all off and all on.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPager, defaultSpecs, PAGERS, sampleVariants } from '../src/pagers/registry.js';
import { parseShadowSpec } from '../src/pagers/shadow/options.js';
test('every variant and every sample spec of every pager builds, under its own name', () => {
    for (const kind of PAGERS) {
        for (const vcpus of [1, 2, 4]) {
            for (const spec of [...kind.variants(vcpus), ...kind.sample(vcpus)]) {
                assert.equal(createPager(spec).name, spec);
            }
            const sample = kind.sample(vcpus);
            assert.equal(sample[0], kind.name, 'the default spec first');
            assert.equal(new Set(sample).size, sample.length, `${kind.name}: a spec sampled twice`);
        }
    }
    const first = defaultSpecs()[0];
    if (first !== undefined)
        assert.equal(sampleVariants(2)[0], first, 'the samples start with a default spec');
});
test("shadow's sample: the defaults, each switch the variants combine flipped once, all off, all on", () => {
    const kind = PAGERS.find((k) => k.name === 'shadow');
    assert.ok(kind !== undefined);
    const sw = kind.sample(2).map((s) => parseShadowSpec(s));
    const def = sw[0];
    assert.ok(def !== undefined && typeof def !== 'string');
    const on = (x) => ({
        oos: x.oos,
        resyncall: x.resyncall,
        prefetch: x.prefetch > 0,
        fastpath: x.fastpath,
        gnp: x.gnp,
        unshadow: x.unshadow,
        pool: x.pool >= 0,
    });
    const flips = new Set();
    let allOff = false;
    let allOn = false;
    for (const x of sw) {
        assert.ok(typeof x !== 'string', String(x));
        const o = on(x);
        const changed = Object.keys(o).filter((k) => o[k] !== on(def)[k]);
        if (changed.length === 1)
            flips.add(changed[0]);
        if (Object.values(o).every((v) => !v))
            allOff = true;
        if (Object.values(o).every((v) => v) && x.prefetch === 512 && x.pool > 0)
            allOn = true;
    }
    assert.deepEqual([...flips].sort(), ['fastpath', 'gnp', 'oos', 'pool', 'prefetch', 'resyncall', 'unshadow']);
    assert.ok(allOff && allOn);
});
//# sourceMappingURL=registry.test.js.map