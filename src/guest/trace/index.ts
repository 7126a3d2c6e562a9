/** Binary traces of guest operation streams (docs/trace-format.md); files: src/io/trace.ts. */
export { type ByteSink, type ByteSource, TraceError, type TraceInput, type TraceOutput } from './format.js';
export { summarizeTrace, type TraceSummary } from './info.js';
export { isTraceStart, readTrace, type TraceFile } from './reader.js';
export { type ReplayOptions, type ReplayResult, replayTrace } from './replay.js';
export { TraceWriter, type TraceWriterOptions } from './writer.js';
