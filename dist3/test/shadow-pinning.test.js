/**
 * The seed's second question — are shadows cached across CR3 switches? Xen
 * pins every top-level shadow at each CR3 load (sh_set_toplevel_shadow ->
 * sh_pin; sh_type_is_pinnable: l2_32, l2_pae, l4_64), so a guest switching
 * back and forth between two address spaces finds its shadows again. Here:
 * after the first round of a CR3 ping-pong, no shadow is made or freed and no
 * shadow fault is taken, in every guest mode.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ShadowPager } from '../src/pagers/shadow/shadow.js';
import { runText } from './support/run.js';
const hex = (v) => `"0x${v.toString(16)}"`;
const pw = (gpa, v, size) => `{"op":"pwrite","gpa":${hex(gpa)},"size":${size},"value":${hex(v)}}`;
/**
 * Two address spaces, each mapping VA 0 (user data) and VA 0x400000 (a
 * second table) to its own frames; space s has its tables at frames
 * 16s+1 … and its data at 16s+10, 16s+11.
 */
function pingPong(mode, rounds) {
    const levels = mode === '32-bit' ? 2 : mode === 'pae' ? 3 : mode === '4-level' ? 4 : 5;
    const size = mode === '32-bit' ? 4 : 8;
    const lines = ['{"op":"machine","vcpus":1,"memory":"0x400000"}'];
    const roots = [];
    for (let s = 0; s < 2; s++) {
        const base = 16 * s + 1;
        roots.push(base * 4096);
        for (let l = 0; l < levels - 1; l++) {
            const flags = mode === 'pae' && l === 0 ? 1 : 7;
            lines.push(pw((base + l) * 4096, (base + l + 1) * 4096 + flags, size));
        }
        // A second leaf table for VA 0x400000 (32-bit: PDE 1; others: PDE 2).
        const pd = base + levels - 2;
        const pdIndex = mode === '32-bit' ? 1 : 2;
        lines.push(pw(pd * 4096 + pdIndex * size, (base + levels) * 4096 + 7, size));
        const leaf = base + levels - 1;
        lines.push(pw(leaf * 4096, (base + 9) * 4096 + 7, size), pw((base + levels) * 4096, (base + 10) * 4096 + 7, size));
        lines.push(pw((base + 9) * 4096, 0x100 + s, 8));
    }
    const cr4 = mode === '32-bit' ? 0 : mode === '5-level' ? 0x1020 : 0x20;
    lines.push(`{"op":"wrcr","reg":"cr4","value":${hex(cr4)}}`);
    if (levels >= 4)
        lines.push('{"op":"wrmsr","msr":"efer","value":"0x100"}');
    lines.push(`{"op":"wrcr","reg":"cr3","value":${hex(roots[0])}}`);
    lines.push('{"op":"wrcr","reg":"cr0","value":"0x80000011"}');
    for (let r = 0; r < rounds; r++) {
        for (const root of roots) {
            lines.push(`{"op":"wrcr","reg":"cr3","value":${hex(root)}}`);
            lines.push('{"op":"read","va":"0x0","size":8,"cpl":3}', '{"op":"read","va":"0x400000","size":8,"cpl":3}');
        }
    }
    return `${lines.join('\n')}\n`;
}
function stats(text) {
    const pager = new ShadowPager({ check: true });
    assert.equal(runText(text, { pager }), runText(text));
    return pager.stats();
}
for (const mode of ['32-bit', 'pae', '4-level', '5-level']) {
    test(`${mode}: a CR3 ping-pong makes, frees and faults nothing after its first round`, () => {
        const one = stats(pingPong(mode, 1));
        const many = stats(pingPong(mode, 12));
        assert.ok(one.shadows_made > 0);
        assert.equal(many.shadows_made, one.shadows_made, 'shadows made');
        assert.equal(many.shadows_freed, one.shadows_freed, 'shadows freed');
        assert.equal(many.shadows_freed, 0);
        assert.equal(many['exit.page_fault'], one['exit.page_fault'], 'shadow faults');
        assert.equal(many['exit.cr_write'] - one['exit.cr_write'], 22, 'one exit per MOV to CR3');
    });
}
//# sourceMappingURL=shadow-pinning.test.js.map