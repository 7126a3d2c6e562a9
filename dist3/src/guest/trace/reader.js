/**
 * Reading a trace. readTrace reads the header from the front and the trailer
 * from the back (so a truncated file fails at once, and the operation count is
 * known before the first block); blocks() then streams the blocks one at a
 * time, each checked (limits, CRC-32, operand rules) before it is returned.
 * Every problem is a TraceError; memory is bounded by the format's limits
 * whatever the file declares.
 */
import { parseJsonObject } from '../../util/json.js';
import { decodeBlock } from './codec.js';
import { BLOCK_HEADER, crc32, DEFLATE_RAW, END_MAGIC, FOOTER, HEADER_FIXED, MAGIC, MAX_BLOCK_COMPRESSED, MAX_BLOCK_OPS, MAX_BLOCK_RAW, MAX_JSON, MAX_OPS, machineProblem, TAG_BLOCK, TAG_TRAILER, TRAILER_FIXED, TraceError, VERSION, } from './format.js';
/** Do these first bytes of a file start with the trace magic? (Anything else is taken for a scenario.) */
export function isTraceStart(lead) {
    return lead.length >= MAGIC.length && MAGIC.every((x, i) => x === lead[i]);
}
/** Read the header and trailer of `input`; its blocks stream on demand. */
export function readTrace(input) {
    const src = input.open();
    try {
        return open(input, src);
    }
    finally {
        src.close();
    }
}
function open(input, src) {
    const { path } = input;
    const size = src.size;
    const at = (offset, reason) => {
        throw new TraceError(path, `offset ${offset}`, reason);
    };
    const read = (offset, length) => {
        const b = new Uint8Array(length);
        if (offset + length > size || src.read(b, offset) !== length)
            at(offset, `the file ends early (${size} bytes): truncated`);
        return b;
    };
    // Header.
    const lead = read(0, Math.min(size, MAGIC.length));
    if (!lead.every((x, i) => x === MAGIC[i]))
        at(0, NOT_A_TRACE);
    const h = read(0, HEADER_FIXED);
    const hv = view(h);
    const version = hv.getUint16(8, true);
    if (version !== VERSION)
        at(8, `trace format version ${version} is not supported (this reader knows version ${VERSION})`);
    const compression = hv.getUint16(10, true);
    if (compression !== DEFLATE_RAW)
        at(10, `compression method ${compression} is not supported (version 1 knows 0, raw DEFLATE)`);
    const metaLength = hv.getUint32(28, true);
    if (metaLength > MAX_JSON)
        at(28, `metadata of ${metaLength} bytes exceeds the limit of ${MAX_JSON}`);
    const metaBytes = read(HEADER_FIXED, metaLength + 4);
    const headerEnd = HEADER_FIXED + metaLength + 4;
    const headerCrc = crc32(concat(h, metaBytes.subarray(0, metaLength)));
    if (view(metaBytes).getUint32(metaLength, true) !== headerCrc)
        at(HEADER_FIXED + metaLength, 'header checksum mismatch');
    const memory = Number(hv.getBigUint64(16, true));
    const machine = { vcpus: hv.getUint32(12, true), memory, maxphyaddr: hv.getUint32(24, true) };
    const badMachine = machineProblem(machine);
    if (badMachine !== null)
        at(12, badMachine);
    const meta = jsonObject(metaBytes.subarray(0, metaLength), (r) => at(HEADER_FIXED, `metadata: ${r}`));
    // Footer and trailer, from the end.
    if (size < headerEnd + TRAILER_FIXED + 4 + FOOTER)
        at(size, 'no trailer and end marker: truncated');
    const f = read(size - FOOTER, FOOTER);
    if (!END_MAGIC.every((x, i) => x === f[8 + i]))
        at(size - 8, 'no end marker: truncated, or not closed by its writer');
    const trailerAt = Number(view(f).getBigUint64(0, true));
    if (trailerAt < headerEnd || trailerAt > size - FOOTER - TRAILER_FIXED - 4)
        at(size - FOOTER, `trailer offset ${trailerAt} lies outside the file`);
    // The record must fill the space before the footer exactly; checked before reading it, which bounds the read.
    const tHead = view(read(trailerAt, TRAILER_FIXED));
    const trailerLength = tHead.getUint32(13, true);
    if (tHead.getUint8(0) !== TAG_TRAILER || trailerAt + TRAILER_FIXED + trailerLength + 4 !== size - FOOTER)
        at(trailerAt, 'no trailer record where the end marker points');
    if (trailerLength > MAX_JSON)
        at(trailerAt + 13, `trailer of ${trailerLength} bytes exceeds the limit of ${MAX_JSON}`);
    const t = read(trailerAt, TRAILER_FIXED + trailerLength + 4);
    const tv = view(t);
    if (tv.getUint32(TRAILER_FIXED + trailerLength, true) !== crc32(t, 0, TRAILER_FIXED + trailerLength))
        at(trailerAt, 'trailer checksum mismatch');
    const blockCount = tv.getUint32(1, true);
    const ops = Number(tv.getBigUint64(5, true));
    if (ops > MAX_OPS)
        at(trailerAt + 5, `${ops} operations: more than a trace may hold (${MAX_OPS})`);
    const trailer = jsonObject(t.subarray(TRAILER_FIXED, TRAILER_FIXED + trailerLength), (r) => at(trailerAt + TRAILER_FIXED, `trailer: ${r}`));
    const file = {
        path,
        version,
        machine,
        meta,
        trailer,
        ops,
        blockCount,
        fileBytes: size,
        stats: { blocks: 0, rawBytes: 0, compressedBytes: 0 },
        blocks: () => readBlocks(file, input, headerEnd, trailerAt),
    };
    return file;
}
function* readBlocks(file, input, start, end) {
    const { path, machine } = file;
    const stats = { blocks: 0, rawBytes: 0, compressedBytes: 0 };
    file.stats = stats;
    const src = input.open();
    try {
        const head = new Uint8Array(BLOCK_HEADER);
        let pos = start;
        let done = 0; // operations before this block
        while (pos < end) {
            const b = stats.blocks + 1;
            const at = (offset, reason) => {
                throw new TraceError(path, `offset ${offset}`, `block ${b}: ${reason}`);
            };
            if (end - pos < BLOCK_HEADER || src.read(head, pos) !== BLOCK_HEADER)
                at(pos, 'block header cut short');
            const hv = view(head);
            if (head[0] !== TAG_BLOCK)
                at(pos, `expected a block record (tag 0x42), found 0x${hex2(head[0])}`);
            const count = hv.getUint32(5, true);
            const rawLength = hv.getUint32(9, true);
            const zLength = hv.getUint32(13, true);
            // Limits first: they bound what is read and inflated. The checksum then vouches for the rest.
            if (zLength > MAX_BLOCK_COMPRESSED || zLength > end - pos - BLOCK_HEADER)
                at(pos + 13, `compressed length ${zLength} runs past the blocks (or the limit ${MAX_BLOCK_COMPRESSED})`);
            const r = new Uint8Array(BLOCK_HEADER + zLength);
            if (src.read(r, pos) !== r.length)
                at(pos, 'truncated');
            if (crc32(r, 5) !== hv.getUint32(1, true))
                at(pos + 1, 'checksum mismatch');
            if (count === 0 || count > MAX_BLOCK_OPS)
                at(pos + 5, `${count} operations: must be 1 to ${MAX_BLOCK_OPS}`);
            if (rawLength < count || rawLength > MAX_BLOCK_RAW)
                at(pos + 9, `raw length ${rawLength} is impossible for ${count} operations (limit ${MAX_BLOCK_RAW})`);
            if (done + count > file.ops)
                at(pos + 5, `more operations than the trailer declares (${file.ops})`);
            let raw;
            try {
                // The declared length bounds inflation: a deflate bomb stops there.
                raw = input.inflate(r.subarray(BLOCK_HEADER), rawLength);
            }
            catch (e) {
                return at(pos + BLOCK_HEADER, `corrupt compressed data (${e.message})`);
            }
            if (raw === null)
                return at(pos + BLOCK_HEADER, `inflates beyond its declared ${rawLength} bytes`);
            if (raw.length !== rawLength)
                at(pos + 9, `inflates to ${raw.length} bytes, not the declared ${rawLength}`);
            const first = done;
            const batch = decodeBlock(raw, count, machine, first + 2, (k, reason) => {
                throw new TraceError(path, `block ${b} op ${first + k + 1}`, reason);
            });
            pos += BLOCK_HEADER + zLength;
            done += count;
            stats.blocks++;
            stats.rawBytes += rawLength;
            stats.compressedBytes += zLength;
            yield batch;
        }
        if (stats.blocks !== file.blockCount || done !== file.ops)
            throw new TraceError(path, `offset ${end}`, `the trailer declares ${file.blockCount} blocks of ${file.ops} operations, the file holds ${stats.blocks} of ${done}`);
    }
    finally {
        src.close();
    }
}
const NOT_A_TRACE = 'not an Umbra trace (bad magic)';
function jsonObject(b, fail) {
    let text;
    try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(b);
    }
    catch (e) {
        return fail(`not valid UTF-8 (${e.message})`);
    }
    const o = parseJsonObject(text);
    return typeof o === 'string' ? fail(o) : o;
}
function concat(a, b) {
    const c = new Uint8Array(a.length + b.length);
    c.set(a);
    c.set(b, a.length);
    return c;
}
function view(b) {
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
}
const hex2 = (x) => x.toString(16).padStart(2, '0');
//# sourceMappingURL=reader.js.map