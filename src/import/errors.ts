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
