/**
 * Paging-entry bits as BigInt, for tests and benches that write scenario
 * text (SDM vol. 3A, 4.3-4.5; restated here rather than imported from src/,
 * so a test does not inherit a mistake from the code under test).
 */
export const P = 1n;
export const RW = 2n;
export const US = 4n;
export const A = 0x20n;
export const D = 0x40n;
export const PS = 0x80n;
export const XD = 1n << 63n;
/** A scenario-format hex literal. */
export const hx = (n) => `"0x${n.toString(16)}"`;
//# sourceMappingURL=entries.js.map