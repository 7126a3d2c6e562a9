/** Node's native SHA-256 behind the core's Sha256 interface (src/util/sha256.ts). */
import { createHash } from 'node:crypto';
import { setSha256Factory } from '../util/sha256.js';
export function nodeSha256() {
    const h = createHash('sha256');
    return {
        update: (data) => {
            h.update(data);
        },
        hex: () => h.digest('hex'),
    };
}
/** Called once by each Node entry point (CLI, benches, tests) before running guests. */
export function useNodeSha256() {
    setSha256Factory(nodeSha256);
}
//# sourceMappingURL=sha256.js.map