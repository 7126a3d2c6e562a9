/** The part of lzma-native's API that the importer uses (the package ships no types). */
declare module 'lzma-native' {
  import type { Transform } from 'node:stream';

  interface DecompressorOptions {
    /** Decode on the calling thread (faster here, and output follows input synchronously). */
    synchronous?: boolean;
    /** Size of the output buffers. */
    bufsize?: number;
    memlimit?: number;
  }
  function createDecompressor(options?: DecompressorOptions): Transform;
  const lzma: { createDecompressor: typeof createDecompressor };
  export default lzma;
}
