/**
 * Plain (uncompressed) ELF cores: random access. Headers and notes are read
 * once; guest frames are read from the file when translation asks for them,
 * through a small cache, so memory use does not grow with the image.
 */
import { closeSync, readSync } from 'node:fs';
import { ImageError } from '../inspect/image.js';
import { parseLayout, parseNotes } from './elf.js';
import { FRAME_BYTES, FrameCache, newFrame } from './frames.js';
/** Fill `dst[off..off+len]` from file offset `pos`. */
function readFully(fd, dst, off, len, pos) {
    while (len > 0) {
        const n = readSync(fd, dst, off, len, pos);
        if (n === 0)
            throw new ImageError('the file ended early (changed while reading?)', pos);
        off += n;
        len -= n;
        pos += n;
    }
}
export class FileBacking {
    fd;
    cache = new FrameCache(1024);
    constructor(fd) {
        this.fd = fd;
    }
    frame(seg, pfn) {
        let f = this.cache.get(pfn);
        if (f === undefined) {
            const { words, bytes } = newFrame();
            readFully(this.fd, bytes, 0, FRAME_BYTES, seg.offset + pfn * FRAME_BYTES - seg.paddr);
            f = words;
            this.cache.set(pfn, f);
        }
        return f;
    }
    read(seg, segOff, dst, dstOff, len) {
        readFully(this.fd, dst, dstOff, len, seg.offset + segOff);
    }
    close() {
        closeSync(this.fd);
    }
}
/** Import from an open plain ELF file of `size` bytes; the backing keeps `fd`. */
export function loadPlain(fd, size) {
    const read = (off, len) => {
        if (off + len > size)
            return undefined;
        const b = Buffer.alloc(len);
        readFully(fd, b, 0, len, off);
        return b;
    };
    const layout = parseLayout(read, size); // with the size known it returns or throws
    const notes = layout.notes.flatMap((n) => parseNotes(read(n.offset, n.size), n.offset));
    return { layout, notes, backing: new FileBacking(fd), bytes: size };
}
//# sourceMappingURL=file.js.map