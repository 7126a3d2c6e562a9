/**
 * A guest memory image as inspection sees it. The importer (src/import/, the
 * Node layer that reads QEMU ELF cores from files) builds one; inspection
 * only reads it, so it knows nothing of files and would run on an image
 * built from bytes in a browser.
 */
import type { PhysicalSpace } from '../arch/x86/walker.js';

/** A problem with an image file: reported to the user as one line (the CLI adds the file name). */
export class ImageError extends Error {
  constructor(
    reason: string,
    /** File offset (in the uncompressed ELF) where the problem was found. */
    readonly offset?: number,
  ) {
    super(offset === undefined ? reason : `${reason} (at offset ${offset})`);
  }
}

/** ELF e_machine values of x86 cores. */
export const EM_386 = 3;
export const EM_X86_64 = 62;

/** A RAM block of the core (a PT_LOAD segment). */
export interface LoadSegment {
  /** Program header index (for messages). */
  readonly index: number;
  readonly paddr: number;
  readonly memsz: number;
  readonly filesz: number;
  readonly offset: number;
}

/** vCPU state from one QEMU note. */
export interface CpuState {
  readonly index: number;
  readonly cr0: bigint;
  readonly cr2: bigint;
  readonly cr3: bigint;
  readonly cr4: bigint;
  readonly rip: bigint;
  readonly rflags: bigint;
  /** SS.DPL, which is how QEMU tracks CPL. */
  readonly cpl: number;
}

/** Guest-physical memory of an image; frames outside RAM read as all ones. */
export interface ImageMemory extends PhysicalSpace {
  isRam(pfn: number): boolean;
  close(): void;
}

export interface GuestImage {
  readonly path: string;
  readonly compressed: boolean;
  readonly elfClass: 32 | 64;
  readonly machine: number;
  /** Uncompressed ELF bytes read. */
  readonly bytes: number;
  readonly loads: readonly LoadSegment[];
  readonly cpus: readonly CpuState[];
  readonly memory: ImageMemory;
  close(): void;
}
