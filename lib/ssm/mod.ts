/**
 * The selective scan with every implementation loaded: importing this module registers the fused kernels
 * (cpu, wasm, webgpu), which `selectiveScan` then uses by default.
 */
import "./kernels/op.ts";
export * from "./scan.ts";
