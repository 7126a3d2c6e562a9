/**
 * Plain (uncompressed) ELF cores: random access. Headers and notes are read
 * once; guest frames are read from the file when translation asks for them,
 * through a small cache, so memory use does not grow with the image.
 */
import { closeSync, readSync } from 'node:fs';
import { ImageError, type LoadSegment } from '../inspect/image.js';
import { type ElfLayout, type ElfNote, parseLayout, parseNotes } from './elf.js';
import { FRAME_BYTES, FrameCache, newFrame } from './frames.js';
import type { Backing } from './memory.js';

/** What an importer hands over: layout, notes and where the segment bytes are. */
export interface Loaded {
  readonly layout: ElfLayout;
  readonly notes: readonly ElfNote[];
  readonly backing: Backing;
  /** Size of the (uncompressed) ELF data read. */
  readonly bytes: number;
}

/** Fill `dst[off..off+len]` from file offset `pos`. */
function readFully(fd: number, dst: Uint8Array, off: number, len: number, pos: number): void {
  while (len > 0) {
    const n = readSync(fd, dst, off, len, pos);
    if (n === 0) throw new ImageError('the file ended early (changed while reading?)', pos);
    off += n;
    len -= n;
    pos += n;
  }
}

export class FileBacking implements Backing {
  private readonly cache = new FrameCache(1024);

  constructor(private readonly fd: number) {}

  frame(seg: LoadSegment, pfn: number): Uint32Array {
    let f = this.cache.get(pfn);
    if (f === undefined) {
      const { words, bytes } = newFrame();
      readFully(this.fd, bytes, 0, FRAME_BYTES, seg.offset + pfn * FRAME_BYTES - seg.paddr);
      f = words;
      this.cache.set(pfn, f);
    }
    return f;
  }

  read(seg: LoadSegment, segOff: number, dst: Uint8Array, dstOff: number, len: number): void {
    readFully(this.fd, dst, dstOff, len, seg.offset + segOff);
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** Import from an open plain ELF file of `size` bytes; the backing keeps `fd`. */
export function loadPlain(fd: number, size: number): Loaded {
  const read = (off: number, len: number): Buffer | undefined => {
    if (off + len > size) return undefined;
    const b = Buffer.alloc(len);
    readFully(fd, b, 0, len, off);
    return b;
  };
  const layout = parseLayout(read, size) as ElfLayout; // with the size known it returns or throws
  const notes = layout.notes.flatMap((n) => parseNotes(read(n.offset, n.size) as Buffer, n.offset));
  return { layout, notes, backing: new FileBacking(fd), bytes: size };
}
