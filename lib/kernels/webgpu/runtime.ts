/**
 * The WebGPU runtime the hand-written WGSL kernels share: compiled pipelines (cached per device and
 * source), and dispatches recorded into TF.js's own command encoder on TF.js's device, so a kernel is
 * ordered with every other tfjs op and reads and writes tfjs tensors' buffers in place; and the
 * Dispatcher of that path (`tfjsDispatcher`), through which the scan's and the GEMM's pass sequences run
 * as TF.js ops (the native engine's own runtime is device.ts). No model knowledge lives here.
 */
import * as tf from "@tensorflow/tfjs";
import type { Dispatcher } from "./dispatcher.ts";

// deno-lint-ignore no-explicit-any
export type Backend = any;

type Pipeline = { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout };

/** Compiled pipelines per device, by WGSL source, with their bind group layouts (asked for once: not free). */
const pipelines = new WeakMap<GPUDevice, Map<string, Pipeline>>();

/** The compute pipeline of `code` (entry point `main`) on `device`, compiled once. */
export function pipelineFor(device: GPUDevice, code: string): Pipeline {
  let cache = pipelines.get(device);
  if (!cache) pipelines.set(device, cache = new Map());
  let p = cache.get(code);
  if (!p) {
    const made = device.createComputePipeline({
      layout: "auto",
      compute: { module: device.createShaderModule({ code }), entryPoint: "main" },
    });
    p = { pipeline: made, layout: made.getBindGroupLayout(0) };
    cache.set(code, p);
  }
  return p;
}

const bufferLimits = new WeakMap<GPUDevice, number>();

/** A fresh float32 tensor of tfjs's webgpu backend, its GPU buffer allocated (contents undefined). */
export function newTensor(be: Backend, shape: number[]): tf.TensorInfo {
  const info = be.makeTensorInfo(shape, "float32");
  be.uploadToGPU(info.dataId); // allocates the GPU buffer
  return info;
}

export function bufferOf(be: Backend, info: tf.TensorInfo): GPUBuffer {
  be.uploadToGPU(info.dataId);
  return be.tensorMap.get(info.dataId).resource as GPUBuffer;
}

/**
 * Records one dispatch of `code` over `groups` workgroups, binding `tensors` in order, into tfjs's command
 * encoder. Inside tf.time or tf.profile (tfjs's activeTimers) the pass is timed with timestamp queries like
 * tfjs's own programs, under `name`.
 */
export function dispatch(
  be: Backend,
  name: string,
  code: string,
  tensors: tf.TensorInfo[],
  groups: [number, number, number],
): void {
  const device: GPUDevice = be.device;
  const p = pipelineFor(device, code);
  let limit = bufferLimits.get(device);
  if (limit === undefined) bufferLimits.set(device, limit = device.limits.maxStorageBuffersPerShaderStage);
  if (tensors.length > limit) {
    throw new Error(
      `${name} (webgpu): a pass needs ${tensors.length} storage buffers but this device allows ${limit}`,
    );
  }
  const bindGroup = device.createBindGroup({
    layout: p.layout,
    entries: tensors.map((t, i) => ({ binding: i, resource: { buffer: bufferOf(be, t) } })),
  });
  for (const t of tensors) be.commandQueueOwnedIds.add(t.dataId); // keep buffers alive until submitted
  be.ensureCommandEncoderReady();
  be.endComputePassEncoder();
  const timed = be.activeTimers != null && be.supportTimestampQuery;
  const descriptor: GPUComputePassDescriptor = {};
  if (timed) {
    if (be.querySet == null) {
      be.querySet = device.createQuerySet({ type: "timestamp", count: be.querySetCount });
    }
    descriptor.timestampWrites = {
      querySet: be.querySet,
      beginningOfPassWriteIndex: 0,
      endOfPassWriteIndex: 1,
    };
  }
  const pass = (be.commandEncoder as GPUCommandEncoder).beginComputePass(descriptor);
  pass.setPipeline(p.pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(...groups);
  pass.end();
  be.dispatchCountInPass++;
  if (timed) be.activeTimers.push({ name, query: be.getQueryTime() });
  // submit every WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE dispatches as tfjs's own programs do, so the GPU starts
  // while the host is still queueing (otherwise queued calls reach the GPU only at the next read-back)
  else if ((tf.env().get("WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE") as number) <= be.dispatchCountInPass) {
    be.submitQueue();
  }
}

/**
 * The Dispatcher (dispatcher.ts) of the TF.js op path: scratch buffers are tfjs tensors freed by
 * `release`, dispatches go into tfjs's encoder (timed under `${prefix}${label}` inside tf.profile).
 */
export function tfjsDispatcher(be: Backend, prefix: string): Dispatcher<tf.TensorInfo> {
  const device: GPUDevice = be.device;
  const { maxComputeWorkgroupStorageSize, maxStorageBuffersPerShaderStage } = device.limits;
  return {
    alloc: (floats) => newTensor(be, [floats]),
    release: (t) => be.disposeData(t.dataId),
    dispatch: (label, code, bufs, groups) => dispatch(be, `${prefix}${label}`, code, bufs, groups),
    limits: {
      maxComputeWorkgroupStorageSize,
      maxStorageBuffersPerShaderStage,
    },
  };
}
