/**
 * Program-trace files through node:fs and node:zlib (the trace format's
 * byte interfaces serve both formats).
 */
import { type ProgramFile, readProgram } from '../guest/program/file.js';
import { traceFileInput } from './trace.js';

/** The program trace at `path`: header and trailer read now, streams on demand. */
export function openProgram(path: string): ProgramFile {
  return readProgram(traceFileInput(path));
}
