/** Names and attributes shared by the fused scan's kernels on every backend (see tfjs/scan_op.ts). */
import type * as tf from "@tensorflow/tfjs";

export const SCAN_KERNEL = "SelectiveScan";
export const SCAN_GRAD_KERNEL = "SelectiveScanGrad";

/** Input names, in the order of the gradient kernel's outputs. */
export const SCAN_INPUTS = ["u", "delta", "A", "B", "C", "D", "z", "deltaBias", "initialState"] as const;
export type ScanInputName = typeof SCAN_INPUTS[number];

export interface ScanAttrs {
  deltaSoftplus: boolean;
  /** Comma-separated names of the inputs present (optional ones may be missing), in input order. */
  present: string;
  /**
   * Whether the forward kernel returns the last state as a second output. Off unless asked: an output
   * nobody reads still gets a gradient from tfjs's tape, a tensor of zeros made on the host, which on
   * webgpu is uploaded through a staging buffer every backward pass (measured on the H200: 3-23 ms of
   * host time per call, more than the backward's GPU time).
   */
  lastState?: boolean;
  [key: string]: unknown;
}

/**
 * The kernels take their inputs as an ARRAY (index i holds the i-th name of `attrs.present`, then dy and
 * dLast for the gradient kernel): optional inputs may be absent, and tfjs's `saveAllInputs`, which keeps
 * them for the backward pass, only accepts array inputs. This returns them by name.
 */
export function namedInputs(inputs: tf.NamedTensorInfoMap, attrs: ScanAttrs): Record<string, tf.TensorInfo> {
  const names = [...attrs.present.split(","), "dy", "dLast"];
  const list = inputs as unknown as tf.TensorInfo[];
  return Object.fromEntries(list.map((t, i) => [names[i], t]));
}
