/** An error the user caused (bad input, bad option): reported as one line, exit status 2. */
export class UsageError extends Error {}
