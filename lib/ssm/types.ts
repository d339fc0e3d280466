/**
 * The selective scan's signature, shared by every implementation.
 *
 * Layout follows mamba_ssm's `selective_scan_fn`:
 *   u, delta, z : (b, d, l)   d = d_inner channels, l = sequence length
 *   A           : (d, n)      n = d_state (real, negative for a stable system)
 *   B, C        : (b, n, l)   input-dependent ("selective")
 *   D, deltaBias: (d)
 *   initialState / lastState: (b, d, n)
 *
 * The recurrence, per channel d and state n:
 *   delta_t = softplus(delta_t + deltaBias)          (when deltaSoftplus)
 *   h_t     = exp(delta_t A) h_{t-1} + delta_t B_t u_t
 *   y_t     = <h_t, C_t> + D u_t ;  out_t = y_t * silu(z_t)
 */
import type { Tensor } from "@tensorflow/tfjs";
import type { ScanInputs, ScanOptions as FusedScanOptions, ScanResult } from "../kernels/mod.ts";

/**
 * Every implementation of `selectiveScan`, listed once: tests, benchmarks, figures and notebooks iterate
 * over this list (or over `availableScanImpls()`, the ones the current backend runs).
 */
export const SCAN_IMPLS = ["fused", "chunked", "sequential", "parallel"] as const;
export type ScanImpl = typeof SCAN_IMPLS[number];

/** One line per implementation: what it is (for tables, figures and notebooks). */
export const SCAN_IMPL_DESCRIPTIONS: Record<ScanImpl, string> = {
  sequential: "reference recurrence, one step per position (TF.js ops)",
  parallel: "work-efficient Blelloch scan over the length (TF.js ops)",
  chunked: "closed form inside chunks, recurrence across them (TF.js ops)",
  fused: "one op with a hand-written backward pass (WebAssembly SIMD, WGSL, plain-JS twin)",
};

export type { ScanInputs, ScanResult };

/** The fused kernels' options, plus the choice of implementation. */
export interface ScanOptions extends FusedScanOptions {
  /** Which implementation; default: the fastest one the backend has (see `defaultScanImpl`). */
  impl?: ScanImpl;
  /** Chunk length for the chunked implementation (default 16). */
  chunkSize?: number;
}

/** The core every op-built implementation provides: the linear recurrence and the readout. */
export type RecurrenceFn = (
  /** exp(delta A), (b, d, l, n) layout is implementation-defined; see each file. */
  args: { u: Tensor; delta: Tensor; A: Tensor; B: Tensor; C: Tensor; h0?: Tensor; chunkSize?: number },
) => { y: Tensor; last: Tensor };
