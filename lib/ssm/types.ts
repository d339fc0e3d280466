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

export type ScanImpl = "sequential" | "parallel" | "chunked" | "fused";

export interface ScanOptions {
  /** Apply softplus to delta (+ deltaBias) before the scan, as Mamba does. Default false. */
  deltaSoftplus?: boolean;
  /** h_{-1}, shape (b, d, n). Default zeros. */
  initialState?: Tensor;
  /** Also return h_{l-1}, shape (b, d, n). */
  returnLastState?: boolean;
  /** Which implementation; default: the fastest registered one (see `defaultScanImpl`). */
  impl?: ScanImpl;
  /** Chunk length for the chunked implementation (default 16). */
  chunkSize?: number;
}

export interface ScanResult {
  /** (b, d, l) */
  y: Tensor;
  /** (b, d, n), present when returnLastState */
  lastState?: Tensor;
}

export interface ScanInputs {
  u: Tensor;
  delta: Tensor;
  A: Tensor;
  B: Tensor;
  C: Tensor;
  D?: Tensor;
  z?: Tensor;
  deltaBias?: Tensor;
}

/** The core every op-built implementation provides: the linear recurrence and the readout. */
export type RecurrenceFn = (
  /** exp(delta A), (b, d, l, n) layout is implementation-defined; see each file. */
  args: { u: Tensor; delta: Tensor; A: Tensor; B: Tensor; C: Tensor; h0?: Tensor; chunkSize?: number },
) => { y: Tensor; last: Tensor };
