/** What a trace holds: one pass over its blocks, counting (for `umbra trace info`). */
import { OP } from '../ops.js';
import { OP_NAME } from './format.js';
export function summarizeTrace(t) {
    const kinds = new Array(16).fill(0);
    const byVcpu = new Array(t.machine.vcpus).fill(0);
    const byCpl = [0, 0, 0, 0];
    let vcpu = 0;
    let ops = 0;
    for (const s of t.blocks()) {
        for (let i = 0; i < s.count; i++) {
            const op = s.op[i];
            kinds[op] = kinds[op] + 1;
            if (op === OP.cpu) {
                vcpu = s.small[i];
                continue;
            }
            byVcpu[vcpu] = byVcpu[vcpu] + 1;
            if (op === OP.read || op === OP.write || op === OP.fetch) {
                const c = s.cpl[i];
                byCpl[c] = byCpl[c] + 1;
            }
        }
        ops += s.count;
    }
    const byKind = {};
    kinds.forEach((n, op) => {
        if (n > 0)
            byKind[OP_NAME[op]] = n;
    });
    return {
        file: t.path,
        version: t.version,
        machine: t.machine,
        meta: t.meta,
        ops,
        byKind,
        byVcpu,
        byCpl,
        blocks: t.stats.blocks,
        rawBytes: t.stats.rawBytes,
        compressedBytes: t.stats.compressedBytes,
        fileBytes: t.fileBytes,
        trailer: t.trailer,
    };
}
//# sourceMappingURL=info.js.map