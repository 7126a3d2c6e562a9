/**
 * Trace files through node:fs and raw DEFLATE through node:zlib: the Node
 * side of the trace format's byte interfaces (src/guest/trace/format.ts).
 * Writing uses zlib so that traces stay byte-identical to earlier ones.
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { MAGIC } from '../guest/trace/format.js';
import { isTraceStart, readTrace } from '../guest/trace/reader.js';
function fileSource(path) {
    const fd = openSync(path, 'r');
    try {
        const size = fstatSync(fd).size;
        return {
            size,
            read: (dst, offset) => readSync(fd, dst, 0, dst.length, offset),
            close: () => closeSync(fd),
        };
    }
    catch (e) {
        closeSync(fd);
        throw e;
    }
}
export function traceFileInput(path) {
    return {
        path,
        open: () => fileSource(path),
        inflate: (z, limit) => {
            try {
                return inflateRawSync(z, { maxOutputLength: limit });
            }
            catch (e) {
                if (e.code === 'ERR_BUFFER_TOO_LARGE')
                    return null;
                throw e;
            }
        },
    };
}
export function traceFileOutput(path) {
    return {
        path,
        open: () => {
            const fd = openSync(path, 'w');
            return {
                write: (b) => {
                    let done = 0;
                    while (done < b.length)
                        done += writeSync(fd, b, done, b.length - done);
                },
                close: () => closeSync(fd),
            };
        },
        deflate: (raw, level) => deflateRawSync(raw, { level }),
    };
}
/** The trace file at `path`: header and trailer read now, blocks streamed on demand. */
export function openTrace(path) {
    return readTrace(traceFileInput(path));
}
/** Does the file start with the trace magic? (Anything else is taken for a scenario.) */
export function isTrace(path) {
    const src = fileSource(path);
    try {
        const lead = new Uint8Array(Math.min(src.size, MAGIC.length));
        return src.read(lead, 0) === lead.length && isTraceStart(lead);
    }
    finally {
        src.close();
    }
}
//# sourceMappingURL=trace.js.map