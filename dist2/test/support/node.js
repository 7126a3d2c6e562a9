/** Imported for its effect: tests hash with node:crypto, as the CLI and benches do. */
import { useNodeSha256 } from '../../src/io/sha256.js';
useNodeSha256();
//# sourceMappingURL=node.js.map