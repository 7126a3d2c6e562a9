/**
 * The hostile scenario generator and the coherence tracker that keeps its
 * scenarios well behaved, and the line minimiser.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { minimiseLines } from '../src/fuzz/minimise.js';
import { staleAccess } from '../src/guest/scenario/coherence.js';
import { GEN_MODES } from '../src/guest/scenario/generate.js';
import { generateHostile } from '../src/guest/scenario/hostile.js';
import { parseScenario } from '../src/guest/scenario/parse.js';
import { runText } from './support/run.js';
const base = {
    mode: '4-level',
    ops: 150,
    vcpus: 3,
    maxphyaddr: 52,
    memoryBytes: 0x400000,
    roots: 3,
    tables: 24,
    pcid: true,
};
test('hostile scenarios are valid, deterministic, well behaved and run natively, in every mode', () => {
    for (const mode of GEN_MODES) {
        for (let seed = 0; seed < 4; seed++) {
            const text = generateHostile(seed, { ...base, mode, maxphyaddr: 32 + seed * 6 });
            assert.equal(generateHostile(seed, { ...base, mode, maxphyaddr: 32 + seed * 6 }), text);
            assert.ok(parseScenario(text, 'hostile').count > 150);
            assert.equal(staleAccess(text), null);
            assert.match(runText(text), /"final"/);
        }
    }
});
test('hostile scenarios build what an attacker would', () => {
    const texts = Array.from({ length: 10 }, (_, seed) => generateHostile(seed, base)).join('');
    // Leaves at unbacked frames above 2^34 (bits 46 and up of an entry).
    assert.ok(/"value":"0x4[0-9a-f]{11}"/.test(texts), '/"value":"0x4[0-9a-f]{11}"/');
    // Invalidations inserted for stale vCPUs, and PCID no-flush CR3 loads.
    assert.ok(/"op":"flush"|"type":2/.test(texts), '/"op":"flush"|"type":2/');
    assert.ok(/"reg":"cr3","value":"0x8[0-9a-f]{15}"/.test(texts), '/"reg":"cr3","value":"0x8[0-9a-f]{15}"/');
    // Accesses at both privilege levels, edits by pwrite and CR4 toggles.
    assert.ok(/"cpl":3/.test(texts), '/"cpl":3/');
    assert.ok(/"cpl":0/.test(texts), '/"cpl":0/');
    // With 64 vCPUs every one gets paging on.
    const many = generateHostile(7, { ...base, vcpus: 64, ops: 20 });
    assert.equal(parseScenario(many, 'hostile').machine.vcpus, 64);
    assert.ok(many.includes('{"op":"cpu","vcpu":63}'));
});
const tables = [
    '{"op":"machine","vcpus":1,"memory":"0x100000"}',
    '{"op":"pwrite","gpa":"0x1000","size":8,"value":"0x2003"}',
    '{"op":"pwrite","gpa":"0x2000","size":8,"value":"0x3003"}',
    '{"op":"pwrite","gpa":"0x3000","size":8,"value":"0x4003"}',
    '{"op":"pwrite","gpa":"0x4000","size":8,"value":"0x10003"}',
    '{"op":"pwrite","gpa":"0x4008","size":8,"value":"0x4003"}',
    '{"op":"wrcr","reg":"cr4","value":"0x20"}',
    '{"op":"wrmsr","msr":"efer","value":"0x100"}',
    '{"op":"wrcr","reg":"cr3","value":"0x1000"}',
    '{"op":"wrcr","reg":"cr0","value":"0x80000011"}',
    '{"op":"read","va":"0x0","size":8,"cpl":0}',
];
const scenario = (...ops) => `${[...tables, ...ops].join('\n')}\n`;
test('the coherence tracker flags an access that relies on an uninvalidated table change', () => {
    const edit = '{"op":"pwrite","gpa":"0x4000","size":8,"value":"0x11003"}';
    const read = '{"op":"read","va":"0x0","size":8,"cpl":0}';
    assert.match(staleAccess(scenario(edit, read)) ?? '', /line 13: an access on vCPU 0/);
    assert.equal(staleAccess(scenario(edit, '{"op":"flush"}', read)), null);
    assert.equal(staleAccess(scenario(edit, '{"op":"invpcid","type":2,"pcid":0,"va":0}', read)), null);
    assert.equal(staleAccess(scenario(edit, '{"op":"wrcr","reg":"cr3","value":"0x1000"}', read)), null);
    // The same change through the guest's own alias of the page table (VA 0x1000 maps it).
    const alias = '{"op":"write","va":"0x1000","size":8,"value":"0x11003","cpl":0}';
    assert.match(staleAccess(scenario(alias, read)) ?? '', /line 13/);
    // Writing a data page, or the walks' own accessed/dirty updates, is no change of the tables.
    const data = '{"op":"write","va":"0x0","size":8,"value":"0x1234","cpl":0}';
    assert.equal(staleAccess(scenario(data, read, read, data)), null);
    // Writing an entry's current value changes nothing.
    assert.equal(staleAccess(scenario('{"op":"pwrite","gpa":"0x4000","size":8,"value":"0x10023"}', read)), null);
    // EFER.NXE changes how entries read.
    assert.match(staleAccess(scenario('{"op":"wrmsr","msr":"efer","value":"0x900"}', read)) ?? '', /line 13/);
});
test('the minimiser keeps the machine line and what still fails, and stays well behaved', () => {
    const edit = '{"op":"pwrite","gpa":"0x4000","size":8,"value":"0x11003"}';
    const flush = '{"op":"flush"}';
    const read8 = '{"op":"read","va":"0x8","size":4,"cpl":3}';
    const text = scenario(flush, '{"op":"setac","value":1}', edit, flush, read8, '{"op":"pread","gpa":0,"size":1}');
    // "Fails" while the tables, the edit and the read after it are there; the
    // flush between them is not needed to fail, but without it the read relies
    // on a stale translation, so it stays.
    const fails = (t) => [...tables, edit, read8].every((l) => t.includes(l));
    assert.deepEqual(minimiseLines(text, fails), scenario(edit, flush, read8));
});
//# sourceMappingURL=hostile.test.js.map