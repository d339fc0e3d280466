/**
 * The one interface a WGSL kernel's pass sequence is written against, so the same sequence runs in two
 * places: as a TF.js op (runtime.ts: buffers are tfjs tensors, dispatches go into tfjs's command encoder,
 * scratch is allocated and freed per call) and in the native engine (device.ts: buffers are views of
 * GPUBuffers allocated once, dispatches are recorded once into a list that is re-encoded every step).
 * A pass sequence only asks for scratch, dispatches code over buffers, and frees scratch it no longer
 * needs; it never reads back and never knows which of the two runs it.
 */

/** Limits a pass sequence may consult to size its workgroups (a subset of GPUSupportedLimits). */
export interface DispatchLimits {
  maxComputeWorkgroupStorageSize: number;
  maxStorageBuffersPerShaderStage: number;
}

export interface Dispatcher<B> {
  /** A float32 buffer of `floats` values, contents undefined (scratch, or an op's output). */
  alloc(floats: number, label: string): B;
  /**
   * `buf` (from `alloc`) is not used by any pass recorded after this call: its memory may serve a later
   * `alloc`. Never call it on a buffer the caller passed in.
   */
  release(buf: B): void;
  /**
   * One dispatch of `code` (entry point `main`), binding `bufs` to bindings 0.. in order; `flops`: the
   * arithmetic it does, where the kernel knows it (the GEMM), for profiles.
   */
  dispatch(label: string, code: string, bufs: B[], groups: [number, number, number], flops?: number): void;
  readonly limits: DispatchLimits;
}

/** Workgroups for one thread per item of a 1-d range of `count` (2-d grid past 65535 workgroups). */
export function flatGroups(count: number, workgroupSize = 64): [number, number, number] {
  const wgs = Math.max(1, Math.ceil(count / workgroupSize));
  return [Math.min(wgs, 65535), Math.ceil(wgs / 65535), 1];
}
