/** `umbra inspect` and `umbra translate` (being written). */
import { UsageError } from './errors.js';

export function inspectCommand(): void {
  throw new UsageError('inspect: not yet available');
}
export function translateCommand(): void {
  throw new UsageError('translate: not yet available');
}
