/** `umbra trace convert` and `umbra trace info`: binary traces of guest operation streams. */
import { resolve } from 'node:path';
import { ScenarioError } from '../guest/scenario/parse.js';
import { summarizeTrace, TraceError } from '../guest/trace/index.js';
import { InputError } from '../import/input.js';
import { isTrace, openTrace } from '../io/trace.js';
import { jsonlToTrace, traceToJsonl } from '../io/trace-jsonl.js';
import { UsageError, userErrors } from './errors.js';
/** The errors a bad input file raises: reported as one line naming the place. */
const KNOWN = [TraceError, ScenarioError, InputError];
export function registerTraceCommands(program) {
    const trace = program.command('trace').description('binary traces of guest operation streams (docs/trace-format.md)');
    trace
        .command('convert')
        .description("trace → scenario JSON Lines, or scenario → trace (the direction follows the input's first bytes)")
        .argument('<in>', 'binary trace or scenario file')
        .argument('<out>', 'output file')
        .action(convertCommand);
    trace
        .command('info')
        .description('summarize a trace: machine, metadata, operations by kind, vCPU and privilege, sizes, trailer')
        .argument('<file>', 'binary trace')
        .option('--json', 'print the summary as JSON')
        .action(infoCommand);
}
export function convertCommand(input, output) {
    if (resolve(input) === resolve(output))
        throw new UsageError(`${input}: input and output are the same file`);
    userErrors(input, () => {
        if (isTrace(input)) {
            traceToJsonl(input, output);
            return;
        }
        const r = jsonlToTrace(input, output);
        if (r.renumbered) {
            process.stderr.write(`umbra: note: ${input} has blank or comment lines between operations; the trace numbers operations ` +
                `consecutively (op k is line k+1), so its replay's "i" values differ from exec of ${input}\n`);
        }
    }, KNOWN);
}
export function infoCommand(file, opts) {
    const s = userErrors(file, () => summarizeTrace(openTrace(file)), KNOWN);
    process.stdout.write(opts.json ? `${JSON.stringify(summaryJson(s), null, 2)}\n` : formatSummary(s));
}
const perOp = (bytes, ops) => (ops === 0 ? 0 : Math.round((bytes / ops) * 1000) / 1000);
function summaryJson(s) {
    return {
        file: s.file,
        version: s.version,
        machine: s.machine,
        meta: s.meta,
        ops: s.ops,
        by_kind: s.byKind,
        by_vcpu: s.byVcpu,
        by_cpl: s.byCpl,
        user_accesses: s.byCpl[3],
        kernel_accesses: s.byCpl[0],
        blocks: s.blocks,
        raw_bytes: s.rawBytes,
        compressed_bytes: s.compressedBytes,
        file_bytes: s.fileBytes,
        raw_bytes_per_op: perOp(s.rawBytes, s.ops),
        bytes_per_op: perOp(s.fileBytes, s.ops),
        trailer: s.trailer,
    };
}
function formatSummary(s) {
    const m = s.machine;
    const mib = m.memory >= 1 << 20 ? ` (${m.memory / (1 << 20)} MiB)` : '';
    const cpl = s.byCpl
        .map((n, c) => [n, c])
        .filter(([n, c]) => n > 0 || c === 0 || c === 3)
        .map(([n, c]) => `${c === 3 ? 'user' : c === 0 ? 'kernel' : 'ring'} (cpl ${c}) ${n}`);
    const rows = [
        ['file', `${s.file} (trace format ${s.version})`],
        [
            'machine',
            `${m.vcpus} vCPU${m.vcpus > 1 ? 's' : ''}, memory 0x${m.memory.toString(16)}${mib}, maxphyaddr ${m.maxphyaddr}`,
        ],
        ['metadata', JSON.stringify(s.meta)],
        ['operations', `${s.ops} in ${s.blocks} block${s.blocks === 1 ? '' : 's'}`],
        [
            '  by kind',
            Object.entries(s.byKind)
                .map(([k, n]) => `${k} ${n}`)
                .join(', ') || '-',
        ],
        ['  by vCPU', s.byVcpu.map((n, v) => `${v}: ${n}`).join(', ')],
        ['  accesses', cpl.join(', ')],
        [
            'bytes',
            `raw ${s.rawBytes} (${perOp(s.rawBytes, s.ops)}/op), compressed ${s.compressedBytes} ` +
                `(${perOp(s.compressedBytes, s.ops)}/op), file ${s.fileBytes} (${perOp(s.fileBytes, s.ops)}/op)`,
        ],
        ['trailer', JSON.stringify(s.trailer)],
    ];
    return rows.map(([k, v]) => `${k.padEnd(12)}${v}\n`).join('');
}
//# sourceMappingURL=trace.js.map