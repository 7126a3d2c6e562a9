/**
 * JSON from untrusted input. JSON.parse accepts any nesting depth, and what
 * later walks the value (JSON.stringify, String(), our own code) recurses,
 * so a file of 100,000 `[` would overflow the stack far from where it was
 * read. The depth is therefore checked first, by one linear scan that
 * counts brackets outside strings, before JSON.parse sees the text.
 */
/** Deepest nesting of arrays and objects accepted in input (real inputs nest 2 or 3 deep). */
export const MAX_JSON_DEPTH = 64;
/** The first place where `text` nests deeper than `max`, or -1 (the scan ignores brackets inside strings). */
export function tooDeepAt(text, max = MAX_JSON_DEPTH) {
    let depth = 0;
    let inString = false;
    for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (inString) {
            // A backslash escapes the next character (it may be a quote).
            if (c === 0x5c)
                i++;
            else if (c === 0x22)
                inString = false;
        }
        else if (c === 0x22)
            inString = true;
        else if (c === 0x5b || c === 0x7b) {
            if (++depth > max)
                return i;
        }
        else if (c === 0x5d || c === 0x7d)
            depth--;
    }
    return -1;
}
/**
 * Parse JSON text from input; a string is returned (the reason) when it is
 * not valid JSON or nests deeper than MAX_JSON_DEPTH.
 */
export function parseJson(text) {
    if (tooDeepAt(text) >= 0)
        return `nested more than ${MAX_JSON_DEPTH} levels deep`;
    try {
        return { value: JSON.parse(text) };
    }
    catch (e) {
        return `not valid JSON (${e.message.split('\n')[0]})`;
    }
}
/** Parse a JSON object (not an array or a scalar) from input; a string is the reason it is not one. */
export function parseJsonObject(text) {
    const r = parseJson(text);
    if (typeof r === 'string')
        return r;
    const o = r.value;
    if (typeof o !== 'object' || o === null || Array.isArray(o))
        return 'expected a JSON object';
    return o;
}
/** `table[key]` when `key` is the table's own property: a user string never reaches Object.prototype. */
export function own(table, key) {
    return Object.hasOwn(table, key) ? table[key] : undefined;
}
//# sourceMappingURL=json.js.map