/** A problem with an image file: reported to the user as one line (the CLI adds the file name). */
export class ImageError extends Error {
    offset;
    constructor(reason, 
    /** File offset (in the uncompressed ELF) where the problem was found. */
    offset) {
        super(offset === undefined ? reason : `${reason} (at offset ${offset})`);
        this.offset = offset;
    }
}
/** ELF e_machine values of x86 cores. */
export const EM_386 = 3;
export const EM_X86_64 = 62;
//# sourceMappingURL=image.js.map