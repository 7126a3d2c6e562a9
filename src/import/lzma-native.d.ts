/** The part of lzma-native's API that Umbra uses (the package ships no types). */
declare module 'lzma-native' {
  import type { Transform } from 'node:stream';

  interface DecompressorOptions {
    /** Decode on the calling thread (faster here, and output follows input synchronously). */
    synchronous?: boolean;
    /** Size of the output buffers. */
    bufsize?: number;
    memlimit?: number;
  }
  interface CompressorOptions {
    /** 0-9, as xz -0 .. -9. */
    preset?: number;
    synchronous?: boolean;
  }
  function createDecompressor(options?: DecompressorOptions): Transform;
  function createCompressor(options?: CompressorOptions): Transform;
  const lzma: { createDecompressor: typeof createDecompressor; createCompressor: typeof createCompressor };
  export default lzma;
}
