/**
 * A run configuration the hypervisor refuses (a pool too small for the
 * vCPUs, …): the user's input is at fault, so front ends report it as one
 * line with exit status 2, not as an internal error.
 */
export class ConfigError extends Error {
}
/**
 * Unit costs, in the cost model's order (the fields of metrics' CostModel,
 * docs/costs.md), that a pager's counters may be priced with.
 */
export const PAGER_COST_UNITS = [
    'vm_exit',
    'shadow_fault_fix',
    'fault_inject',
    'fast_fault',
    'emulate_insn',
    'cr_write_handler',
    'invlpg_handler',
    'physical_write_handler',
    'shadow_make',
    'shadow_free',
    'entry_revalidate',
    'write_access_removal',
    'rmap_entry',
    'wrmap_guess',
    'l1_scan',
    'shootdown',
];
/**
 * What a pager's cycles go to, in the order the cost model lists its parts
 * (and a plot stacks them): exit round trips, handler work, instruction
 * emulation, upkeep of the pager's own tables, TLB shootdowns.
 */
export const COST_CATEGORIES = ['exit', 'handler', 'emulation', 'upkeep', 'shootdown'];
//# sourceMappingURL=pager.js.map