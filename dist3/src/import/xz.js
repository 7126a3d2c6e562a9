/**
 * xz-compressed ELF cores: decompressed once, as a stream. The headers are
 * parsed from the first bytes; after that each decompressed chunk is routed
 * by file offset: note bytes are copied, PT_LOAD bytes are cut into guest
 * frames of which only the non-zero ones are kept (FrameStore: memory up to a
 * budget, then a temporary file). Nothing holds the whole image. The
 * stream is read to its end even when the ELF data needed ends earlier, so
 * that xz's integrity check covers what was used.
 *
 * lzma-native pushes all output of one input chunk before it takes the next,
 * without backpressure, so the output in flight is what one input piece
 * expands to: up to ~7000 times its size (runs of zeros). Pieces therefore
 * start at 256 bytes, shrink at once when the last one expanded a lot, and
 * only double while data compresses poorly, up to 16 KiB: at most ~110 MiB
 * in flight, while incompressible data does not pay the per-piece cost
 * (~80 us) every 256 bytes.
 */
import { readFileSync, readSync } from 'node:fs';
import lzma from 'lzma-native';
import { ImageError } from '../inspect/image.js';
import { ZERO_FRAME } from '../machine/memory.js';
import { parseLayout, parseNotes } from './elf.js';
import { FRAME_BYTES, FrameStore } from './frames.js';
export const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const INPUT_MIN = 256;
const INPUT_MAX = 16 << 10;
const OUTPUT_PER_INPUT = 1 << 20;
const GROW_BELOW = 64;
/** Headers must lie within this many bytes of the start of a compressed image. */
const HEAD_LIMIT = 64 << 20;
const ZEROS = Buffer.alloc(FRAME_BYTES);
function isZero(b, off) {
    return b.compare(ZEROS, 0, FRAME_BYTES, off, off + FRAME_BYTES) === 0;
}
class StreamParser {
    store;
    /** File offset of the next byte. */
    pos = 0;
    layout;
    head = [];
    headLen = 0;
    /** Bytes the header parser asked for last time. */
    need = 64;
    regions = [];
    first = 0;
    end = 0;
    partial = new Map();
    constructor(store) {
        this.store = store;
    }
    push(chunk) {
        if (this.layout !== undefined) {
            this.consume(chunk);
            return;
        }
        this.head.push(chunk);
        this.headLen += chunk.length;
        if (this.headLen < this.need)
            return;
        const buf = Buffer.concat(this.head);
        this.head = [buf];
        const layout = parseLayout(this.reader(buf), null);
        if (layout === undefined) {
            if (this.need > HEAD_LIMIT) {
                throw new ImageError(`headers reach past ${HEAD_LIMIT} bytes, too far for a compressed image`, this.need);
            }
            return;
        }
        this.start(layout);
        this.head = [];
        this.consume(buf);
    }
    /** Check that everything needed arrived; the notes and frames. */
    finish() {
        if (this.layout === undefined) {
            const buf = Buffer.concat(this.head);
            parseLayout(this.reader(buf), buf.length); // throws: the stream ended inside the headers
            throw new ImageError('truncated headers', buf.length);
        }
        if (this.pos < this.end) {
            const r = this.regions.find((x) => x.end > this.pos);
            const what = r.load ? `segment ${r.load.index}` : 'the note segment';
            throw new ImageError(`truncated: the data ends at ${this.pos} but ${what} runs to ${r.end}`, this.pos);
        }
        const notes = this.regions.flatMap((r) => (r.note ? parseNotes(r.note, r.start) : []));
        return { layout: this.layout, notes, backing: new StoreBacking(this.store), bytes: this.pos };
    }
    reader(buf) {
        return (off, len) => {
            if (off + len <= buf.length)
                return buf.subarray(off, off + len);
            this.need = Math.max(this.need, off + len);
            return undefined;
        };
    }
    start(layout) {
        this.layout = layout;
        for (const s of layout.loads)
            if (s.filesz > 0)
                this.regions.push({ start: s.offset, end: s.offset + s.filesz, load: s });
        for (const n of layout.notes)
            this.regions.push({ start: n.offset, end: n.offset + n.size, note: Buffer.alloc(n.size) });
        this.regions.sort((a, b) => a.start - b.start);
        this.end = this.regions.reduce((m, r) => Math.max(m, r.end), 0);
    }
    consume(chunk) {
        const cs = this.pos;
        const ce = cs + chunk.length;
        const regions = this.regions;
        while (this.first < regions.length && regions[this.first].end <= cs)
            this.first++;
        for (let j = this.first; j < regions.length && regions[j].start < ce; j++) {
            const r = regions[j];
            const a = Math.max(cs, r.start);
            const b = Math.min(ce, r.end);
            if (a >= b)
                continue;
            if (r.note)
                chunk.copy(r.note, a - r.start, a - cs, b - cs);
            else
                this.loadBytes(r.load, a - r.start, chunk, a - cs, b - a);
        }
        this.pos = ce;
    }
    /** Bytes `src[srcOff..+len]` are segment `seg`'s data from segment offset `segOff`. */
    loadBytes(seg, segOff, src, srcOff, len) {
        let p = seg.paddr + segOff;
        const dataEnd = seg.paddr + seg.filesz;
        while (len > 0) {
            const inFrame = p % FRAME_BYTES;
            const n = Math.min(FRAME_BYTES - inFrame, len);
            const pfn = (p - inFrame) / FRAME_BYTES;
            if (n === FRAME_BYTES) {
                if (!isZero(src, srcOff))
                    this.store.put(pfn, src, srcOff);
            }
            else {
                let part = this.partial.get(seg);
                if (part === undefined || part.pfn !== pfn) {
                    if (part !== undefined)
                        this.flush(part);
                    part = { pfn, bytes: Buffer.alloc(FRAME_BYTES) };
                    this.partial.set(seg, part);
                }
                src.copy(part.bytes, inFrame, srcOff, srcOff + n);
                if (inFrame + n === FRAME_BYTES || p + n === dataEnd) {
                    this.flush(part);
                    this.partial.delete(seg);
                }
            }
            p += n;
            srcOff += n;
            len -= n;
        }
    }
    flush(part) {
        if (!isZero(part.bytes, 0))
            this.store.put(part.pfn, part.bytes, 0);
    }
}
/** Segment bytes from the frames kept while streaming (absent frames are zeros). */
class StoreBacking {
    store;
    constructor(store) {
        this.store = store;
    }
    frame(_seg, pfn) {
        return this.store.get(pfn) ?? ZERO_FRAME;
    }
    read(seg, segOff, dst, dstOff, len) {
        let p = seg.paddr + segOff;
        while (len > 0) {
            const inFrame = p % FRAME_BYTES;
            const n = Math.min(FRAME_BYTES - inFrame, len);
            const f = this.store.get((p - inFrame) / FRAME_BYTES);
            if (f === undefined)
                dst.fill(0, dstOff, dstOff + n);
            else
                dst.set(new Uint8Array(f.buffer, f.byteOffset + inFrame, n), dstOff);
            p += n;
            dstOff += n;
            len -= n;
        }
    }
    close() {
        this.store.close();
    }
}
/** Stream-decompress the xz file open as `fd` and import the ELF core inside. */
export async function loadXz(fd, memoryBudget) {
    const parser = new StreamParser(new FrameStore(memoryBudget));
    const dec = lzma.createDecompressor({ synchronous: true });
    const input = Buffer.alloc(INPUT_MAX);
    let inPos = 0;
    let inLen = INPUT_MIN;
    let produced = 0;
    try {
        await new Promise((resolve, reject) => {
            let settled = false;
            const settle = (e) => {
                if (settled)
                    return;
                settled = true;
                if (e === undefined)
                    resolve();
                else
                    reject(e);
            };
            dec.on('data', (chunk) => {
                produced += chunk.length;
                if (settled)
                    return;
                try {
                    parser.push(chunk);
                }
                catch (e) {
                    settle(e);
                }
            });
            dec.on('error', (e) => {
                settle(new ImageError(`xz data is corrupt or truncated (${e.message})`, parser.pos));
            });
            dec.on('end', () => settle());
            const pump = () => {
                if (settled)
                    return;
                let n;
                try {
                    n = readSync(fd, input, 0, inLen, inPos);
                }
                catch (e) {
                    settle(e);
                    return;
                }
                inPos += n;
                if (n === 0) {
                    dec.end();
                    return;
                }
                produced = 0;
                dec.write(Buffer.from(input.subarray(0, n)), () => {
                    const ratio = produced / n;
                    inLen =
                        ratio < GROW_BELOW
                            ? Math.min(INPUT_MAX, inLen * 2)
                            : Math.max(INPUT_MIN, Math.min(inLen, Math.floor(OUTPUT_PER_INPUT / ratio)));
                    pump();
                });
            };
            pump();
        });
    }
    catch (e) {
        parser.store.close();
        throw e;
    }
    finally {
        dec.destroy();
    }
    try {
        return parser.finish();
    }
    catch (e) {
        parser.store.close();
        throw e;
    }
}
/** Decompress a whole (small) .xz file into memory: for QEMU's compressed `info tlb`/`info mem` texts. */
export function unxzFile(path) {
    return new Promise((resolve, reject) => {
        const parts = [];
        const d = lzma.createDecompressor({ synchronous: true });
        d.on('data', (b) => parts.push(b));
        d.on('end', () => resolve(Buffer.concat(parts)));
        d.on('error', reject);
        d.end(readFileSync(path));
    });
}
//# sourceMappingURL=xz.js.map