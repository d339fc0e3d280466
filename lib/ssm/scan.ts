/**
 * `selectiveScan`: ONE op, several interchangeable implementations (see types.ts for the math and the
 * layout). The op-built implementations share the input preparation (delta bias and softplus) and the
 * output (skip connection D u and the silu(z) gate); they differ only in how the linear recurrence is
 * evaluated. The fused kernels (one op doing everything, with a hand-written backward pass: lib/kernels)
 * are used by default on every backend that has them.
 */
import * as tf from "@tensorflow/tfjs";
import { fusedScanAvailable, fusedSelectiveScan } from "../kernels/mod.ts";
import {
  type RecurrenceFn,
  SCAN_IMPLS,
  type ScanImpl,
  type ScanInputs,
  type ScanOptions,
  type ScanResult,
} from "./types.ts";
import { sequentialRecurrence } from "./reference.ts";
import { parallelRecurrence } from "./parallel.ts";
import { chunkedRecurrence } from "./chunked.ts";

export type { ScanImpl, ScanInputs, ScanOptions, ScanResult } from "./types.ts";

const recurrences: Record<Exclude<ScanImpl, "fused">, RecurrenceFn> = {
  sequential: sequentialRecurrence,
  parallel: parallelRecurrence,
  chunked: chunkedRecurrence,
};

/** The implementations usable on the current backend, in SCAN_IMPLS's order. */
export function availableScanImpls(): ScanImpl[] {
  return SCAN_IMPLS.filter((impl) => impl !== "fused" || fusedScanAvailable());
}

let defaultImpl: ScanImpl | undefined;
/** Overrides the default implementation for the whole process (undefined restores automatic choice). */
export function setDefaultScanImpl(impl: ScanImpl | undefined): void {
  defaultImpl = impl;
}

/** The fused kernel where the backend has one; otherwise the chunked scan (the fastest op-built one). */
export function defaultScanImpl(): ScanImpl {
  if (defaultImpl) return defaultImpl;
  return fusedScanAvailable() ? "fused" : "chunked";
}

function checkShapes({ u, delta, A, B, C, D, z, deltaBias }: ScanInputs, h0?: tf.Tensor): void {
  const fail = (what: string) => {
    throw new Error(
      `selectiveScan: ${what} (u ${fmt(u)}, delta ${fmt(delta)}, A ${fmt(A)}, B ${fmt(B)}, ` +
        `C ${fmt(C)})`,
    );
  };
  if (u.rank !== 3) fail("u must be (batch, d_inner, length)");
  const [b, d, l] = u.shape;
  if (l === 0) fail("length must be at least 1");
  if (!same(delta.shape, u.shape)) fail("delta must have u's shape");
  if (A.rank !== 2 || A.shape[0] !== d) fail("A must be (d_inner, d_state)");
  const n = A.shape[1] ?? -1;
  if (!same(B.shape, [b, n, l])) fail("B must be (batch, d_state, length)");
  if (!same(C.shape, [b, n, l])) fail("C must be (batch, d_state, length)");
  if (D && !same(D.shape, [d])) fail(`D must be (d_inner), got ${fmt(D)}`);
  if (deltaBias && !same(deltaBias.shape, [d])) fail(`deltaBias must be (d_inner), got ${fmt(deltaBias)}`);
  if (z && !same(z.shape, u.shape)) fail(`z must have u's shape, got ${fmt(z)}`);
  if (h0 && !same(h0.shape, [b, d, n])) {
    fail(`initialState must be (batch, d_inner, d_state), got ${fmt(h0)}`);
  }
}
const same = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((x, i) => x === b[i]);
const fmt = (t: tf.Tensor) => `[${t.shape.join(", ")}]`;

/**
 * y = selective scan of u with input-dependent step delta and projections B, C (layout in types.ts).
 * Returns `{ y }`, plus `lastState` when `returnLastState` is set. Differentiable with respect to every
 * tensor input, the initial state included.
 */
export function selectiveScan(
  u: tf.Tensor,
  delta: tf.Tensor,
  A: tf.Tensor,
  B: tf.Tensor,
  C: tf.Tensor,
  D?: tf.Tensor,
  z?: tf.Tensor,
  deltaBias?: tf.Tensor,
  opts: ScanOptions = {},
): ScanResult {
  const inputs: ScanInputs = { u, delta, A, B, C, D, z, deltaBias };
  checkShapes(inputs, opts.initialState);
  const impl = opts.impl ?? defaultScanImpl();
  if (impl === "fused") {
    if (!fusedScanAvailable()) {
      throw new Error(
        `selectiveScan: the ${tf.getBackend()} backend has no fused kernel ` +
          `(available: ${availableScanImpls().join(", ")})`,
      );
    }
    return fusedSelectiveScan(inputs, opts);
  }
  const recurrence = recurrences[impl];
  if (!recurrence) throw new Error(`selectiveScan: unknown impl "${impl}"`);
  return tf.tidy(() => {
    let dt = deltaBias ? tf.add(delta, deltaBias.reshape([1, -1, 1])) : delta; // (b, d, l)
    if (opts.deltaSoftplus) dt = tf.softplus(dt);
    const { y: yScan, last } = recurrence({
      u,
      delta: dt,
      A,
      B,
      C,
      h0: opts.initialState,
      chunkSize: opts.chunkSize,
    });
    let y = D ? tf.add(yScan, tf.mul(u, D.reshape([1, -1, 1]))) : yScan; // + D u
    if (z) y = tf.mul(y, tf.mul(z, tf.sigmoid(z))); // * silu(z)
    return opts.returnLastState ? { y, lastState: last } : { y };
  }) as ScanResult;
}
