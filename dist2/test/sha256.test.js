/** The core's pure-JS SHA-256 and Node's native one give the same digests (the CLI installs the native one). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nodeSha256 } from '../src/io/sha256.js';
import { createSha256, nobleSha256, setSha256Factory } from '../src/util/sha256.js';
/** Pseudo-random bytes (xorshift), so inputs span every byte value. */
function bytes(n, seed) {
    const out = new Uint8Array(n);
    let x = seed | 1;
    for (let i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        out[i] = x & 0xff;
    }
    return out;
}
const hex = (make, parts) => {
    const h = make();
    for (const p of parts)
        h.update(p);
    return h.hex();
};
test('SHA-256: known answers (FIPS 180-4 examples)', () => {
    for (const make of [nobleSha256, nodeSha256]) {
        assert.equal(hex(make, []), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
        assert.equal(hex(make, ['abc']), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    }
});
test('SHA-256: pure-JS and native agree on empty, block-edge, non-ASCII and > 64 KiB inputs, whole or in pieces', () => {
    const cases = [
        [new Uint8Array(0)],
        [bytes(55, 1)],
        [bytes(56, 2)],
        [bytes(64, 3)],
        [bytes(65, 4)],
        ['{"final":{"memory_sha256":"…","vcpus":[]}}\n', 'ü€𝄞'],
        [bytes(65536 + 17, 5)],
        [bytes(1 << 20, 6)],
        [bytes(8, 7), bytes(4096, 8), bytes(8, 9), bytes(4096, 10), bytes(3, 11)],
    ];
    for (const parts of cases)
        assert.equal(hex(nobleSha256, parts), hex(nodeSha256, parts));
});
test('SHA-256: the installed factory is what the core uses', () => {
    try {
        setSha256Factory(nobleSha256);
        const a = hex(createSha256, [bytes(70000, 12)]);
        setSha256Factory(nodeSha256);
        assert.equal(hex(createSha256, [bytes(70000, 12)]), a);
    }
    finally {
        setSha256Factory(nodeSha256);
    }
});
//# sourceMappingURL=sha256.test.js.map