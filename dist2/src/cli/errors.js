/** An error the user caused (bad input, bad option): reported as one line, exit status 2. */
export class UsageError extends Error {
}
/**
 * Run `fn`, turning the failures a user causes (a missing or unreadable
 * file, a bad trace or scenario: any error whose class is in `known`, or a
 * Node system error) into one-line UsageErrors naming `file`.
 */
export function userErrors(file, fn, known = []) {
    try {
        return fn();
    }
    catch (e) {
        if (known.some((k) => e instanceof k))
            throw new UsageError(e.message);
        const code = e.code;
        if (code === 'ENOENT')
            throw new UsageError(`${e.path ?? file}: no such file or directory`);
        if (typeof code === 'string' && code.startsWith('E'))
            throw new UsageError(`${file}: ${e.message}`);
        throw e;
    }
}
//# sourceMappingURL=errors.js.map