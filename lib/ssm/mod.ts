/**
 * `selectiveScan`: one API over every implementation (SCAN_IMPLS), the fused kernels by default where the
 * backend has them.
 */
export * from "./scan.ts";
export { SCAN_IMPL_DESCRIPTIONS, SCAN_IMPLS } from "./types.ts";
