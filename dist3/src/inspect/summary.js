/** Human-readable rendering of a Report (`umbra inspect --format summary`). */
import { formatBytes } from './format.js';
import { renderTranslation } from './translate.js';
const MACHINES = { 3: 'i386', 62: 'x86-64' };
export function renderSummary(r) {
    const out = [];
    const line = (s = '') => {
        out.push(s);
    };
    const { image: img, vcpu: v } = r;
    const kind = `${img.format}${img.compressed ? ', xz-compressed' : ''}`;
    line(`image       ${img.path}`);
    line(`            ${kind}, e_machine ${img.machine} (${MACHINES[img.machine] ?? '?'}), ${img.vcpus} vCPUs`);
    line(`guest RAM   ${img.ram.map((m) => `${m.start}-${m.end} (${formatBytes(m.bytes)})`).join(', ')}`);
    line();
    line(`vCPU ${v.index}      CPL ${v.cpl}, RIP ${v.rip}, CR2 ${v.cr2}`);
    const reg = (name, value, flags, extra = '') => line(`  ${name.padEnd(12)}${flags ? value.padEnd(12) + flags : value}${extra}`);
    reg('CR0', v.cr0, v.cr0Flags);
    reg('CR3', v.cr3, '');
    reg('CR4', v.cr4, v.cr4Flags);
    reg('EFER', v.efer, v.eferFlags || '-', v.eferSource === 'inferred' ? '  (inferred)' : `  (from ${v.eferSource})`);
    reg('MAXPHYADDR', String(v.maxPhysAddr), '', `  (${v.maxPhysAddrSource})`);
    reg('paging', r.paging, '');
    for (const n of v.inferred)
        line(`  note: ${n}`);
    if (r.root === null) {
        line();
        line('Paging is off (CR0.PG=0): linear addresses are physical addresses.');
        return `${out.join('\n')}\n`;
    }
    line();
    space(line, `Address space of CR3 ${r.root.cr3}`, r.root);
    if (r.twin) {
        line();
        space(line, `KPTI twin root ${r.twin.cr3}, not in CR3`, r.twin);
    }
    else if (r.paging !== '32-bit') {
        line();
        line("No KPTI twin: the other half of the root's 8 KiB block is not a matching top-level table.");
    }
    if (r.samples) {
        line();
        line('Sample translations (PKRU taken as 0; RFLAGS.AC from the image)');
        for (const s of r.samples) {
            line(`  ${s.label}:`);
            out.push(renderTranslation(s.translation, '    ').trimEnd());
        }
    }
    return `${out.join('\n')}\n`;
}
function space(line, title, s) {
    const half = s.kind ? `: the ${s.kind} half of a KPTI pair` : '';
    line(`${title}${half}`);
    const tables = Object.entries(s.tableFrames)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ');
    line(`  page tables   ${s.tableFramesTotal} frames: ${tables}`);
    const sizes = Object.entries(s.leaves)
        .map(([k, n]) => `${n} x ${k}`)
        .join(', ');
    line(`  leaves        ${s.leafCount}${sizes ? `: ${sizes}` : ''}`);
    const dev = s.nonRam.leaves > 0 ? `; ${formatBytes(s.nonRam.bytes)} in ${s.nonRam.leaves} pages outside RAM (devices)` : '';
    line(`  mapped        ${formatBytes(s.mappedBytes)}${dev}`);
    line('  effective rights (all levels):');
    const cols = ['mapped', 'writable', 'executable', 'writable+exec'];
    line(`    ${''.padEnd(12)}${cols.map((c) => c.padStart(14)).join('')}`);
    const row = (name, t) => {
        const vals = [t.bytes, t.writable, t.executable, t.writableAndExecutable];
        line(`    ${name.padEnd(12)}${vals.map((x) => formatBytes(x).padStart(14)).join('')}`);
    };
    row('user', s.user);
    row('supervisor', s.supervisor);
    line(`  first pages   user ${s.firstUserPage ?? 'none'}, supervisor ${s.firstSupervisorPage ?? 'none'}`);
    if (s.anomalies.length === 0) {
        line('  anomalies     none');
        return;
    }
    line('  anomalies:');
    for (const a of s.anomalies) {
        line(`    ${a.count} ${a.description}`);
        line(`      e.g. ${a.examples.join(', ')}`);
    }
}
//# sourceMappingURL=summary.js.map