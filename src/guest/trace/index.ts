/** Binary traces of guest operation streams (docs/trace-format.md). */
export { TraceError } from './format.js';
export { summarizeTrace, type TraceSummary } from './info.js';
export { jsonlToTrace, traceToJsonl } from './jsonl.js';
export { isTrace, openTrace, type TraceFile } from './reader.js';
export { type ReplayOptions, type ReplayResult, replayTrace } from './replay.js';
export { TraceWriter, type TraceWriterOptions } from './writer.js';
