/**
 * SHA-256 for the core (the scenario memory hash, run digests) without a
 * Node built-in, so the same core runs in a browser. The default is
 * @noble/hashes (pure JS); Node front ends install node:crypto at startup
 * (src/io/sha256.ts) because hashing a big guest's memory is on the hot path
 * and the native one is several times faster. SHA-256 is SHA-256: both give
 * the same digest for the same bytes (test/sha256.test.ts).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
const utf8 = new TextEncoder();
/** The pure-JS SHA-256 every platform has. */
export function nobleSha256() {
    const h = sha256.create();
    return {
        update: (data) => {
            h.update(typeof data === 'string' ? utf8.encode(data) : data);
        },
        hex: () => bytesToHex(h.digest()),
    };
}
let factory = nobleSha256;
/** Install another implementation (a front end's native one) for every hash made from now on. */
export function setSha256Factory(make) {
    factory = make;
}
export function createSha256() {
    return factory();
}
//# sourceMappingURL=sha256.js.map