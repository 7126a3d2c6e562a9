/** An error the user caused (bad input, bad option): reported as one line, exit status 2. */
export class UsageError extends Error {}

/**
 * Run `fn`, turning the failures a user causes (a missing or unreadable
 * file, a bad trace or scenario: any error whose class is in `known`, or a
 * Node system error) into one-line UsageErrors naming `file`.
 */
export function userErrors<T>(file: string, fn: () => T, known: ReadonlyArray<new (...a: never[]) => Error> = []): T {
  try {
    return fn();
  } catch (e) {
    if (known.some((k) => e instanceof k)) throw new UsageError((e as Error).message);
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new UsageError(`${(e as NodeJS.ErrnoException).path ?? file}: no such file or directory`);
    if (typeof code === 'string' && code.startsWith('E')) throw new UsageError(`${file}: ${(e as Error).message}`);
    throw e;
  }
}
