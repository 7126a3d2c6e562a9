/** Binary traces of guest operation streams (docs/trace-format.md); files: src/io/trace.ts. */
export { TraceError } from './format.js';
export { summarizeTrace } from './info.js';
export { isTraceStart, readTrace } from './reader.js';
export { replayTrace } from './replay.js';
export { TraceWriter } from './writer.js';
//# sourceMappingURL=index.js.map