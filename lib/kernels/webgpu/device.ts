/**
 * The native engine's WebGPU runtime, apart from TF.js: its own GPUDevice, buffers allocated once,
 * pipelines compiled once, dispatch lists recorded once (pipeline + bind group + workgroup counts) and
 * re-encoded into one compute pass of one command encoder per step (WebGPU cannot replay a command
 * buffer), one queue submission per step, read-backs through a ring of staging buffers so the host
 * never waits for the GPU per step, and optional timestamp queries. No model knowledge.
 *
 * Costs this is built around (Deno 2.9.6 on an H200, docs/ENVIRONMENT.md): ~15 us per dispatch inside
 * one pass, ~43 us for a submission of one dispatch, 11 ms per read-back round trip. So: no per-dispatch
 * passes (except when profiling), no per-step allocation or bind-group creation, no per-step read-back.
 *
 * The runtime counts every buffer, bind group, pipeline, encoder and submission made on its device
 * (wrapping the device's own methods), so tests can show that a step creates none of the first three.
 */
import type { Dispatcher, DispatchLimits } from "./dispatcher.ts";
import { summarizeErrors } from "../../util/messages.ts";

/** A range of a GPUBuffer, in bytes: what a binding of a recorded dispatch refers to. */
export interface GpuView {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

/** One recorded dispatch. */
export interface Recorded {
  label: string;
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  groups: [number, number, number];
  /** bytes of every binding together: what the dispatch could read or write at most once each (profiles) */
  boundBytes: number;
  /** floating-point operations, where the kernel says (the GEMM) */
  flops?: number;
}

export interface GpuChoice {
  /**
   * Accept a software (fallback) adapter such as Mesa's llvmpipe: for tests on machines without a GPU.
   * Without it only a real GPU is used.
   */
  allowSoftware?: boolean;
  /** Ask for the timestamp-query feature when the adapter has it. */
  timestamps?: boolean;
}

export interface GpuInfo {
  description: string;
  fallback: boolean;
  timestamps: boolean;
}

/**
 * Requests an adapter and a device with the adapter's limits (the defaults are far below what large
 * buffers and the scan's workgroup memory need). The software adapter is asked for explicitly
 * (forceFallbackAdapter) when no other is returned, and only with `allowSoftware`, the rule lib/backend.ts
 * follows for TF.js (a fallback adapter is used only when asked for).
 */
export async function requestGpu(opts: GpuChoice = {}): Promise<{ device: GPUDevice; info: GpuInfo }> {
  const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
  if (!gpu) throw new Error("WebGPU is not available in this runtime (navigator.gpu is undefined)");
  if (!Deno.env.get("XDG_RUNTIME_DIR")) Deno.env.set("XDG_RUNTIME_DIR", "/tmp"); // quiets Mesa
  let adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter && opts.allowSoftware) adapter = await gpu.requestAdapter({ forceFallbackAdapter: true });
  if (!adapter) {
    throw new Error(
      "no WebGPU adapter: on a GPU machine the Vulkan loader and driver are needed" +
        (opts.allowSoftware ? "; for a software one, Debian's mesa-vulkan-drivers" : ""),
    );
  }
  // deno-lint-ignore no-explicit-any
  const info = (adapter as any).info ?? {};
  // deno-lint-ignore no-explicit-any
  const fallback = Boolean(info.isFallbackAdapter ?? (adapter as any).isFallbackAdapter);
  const description = String(info.description || info.device || info.vendor || "unknown GPU");
  if (fallback && !opts.allowSoftware) {
    throw new Error(
      `only a software WebGPU adapter is available (${description}); the engine uses it only when asked ` +
        "(allowSoftware / --allow-software)",
    );
  }
  const timestamps = !!opts.timestamps && adapter.features.has("timestamp-query");
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures: timestamps ? ["timestamp-query"] : [],
    requiredLimits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    },
  });
  return { device, info: { description, fallback, timestamps } };
}

export interface GpuCounters {
  buffers: number;
  bufferBytes: number;
  bindGroups: number;
  pipelines: number;
  encoders: number;
  submits: number;
}

/**
 * Buffers lent to pass sequences for scratch (Dispatcher.alloc): a released buffer serves the next
 * request it is large enough for (smallest first), so layers recorded one after another share scratch.
 * All of it is created while the dispatch lists are recorded, none per step.
 */
class ScratchPool {
  private free: GPUBuffer[] = [];
  constructor(private rt: GpuRuntime) {}
  take(bytes: number, label: string): GpuView {
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    this.free.sort((a, b) => a.size - b.size);
    const i = this.free.findIndex((b) => b.size >= size);
    const buffer = i >= 0 ? this.free.splice(i, 1)[0] : this.rt.buffer(size, `scratch: ${label}`);
    return { buffer, offset: 0, size };
  }
  give(v: GpuView): void {
    this.free.push(v.buffer);
  }
}

export class GpuRuntime {
  readonly counters: GpuCounters = {
    buffers: 0,
    bufferBytes: 0,
    bindGroups: 0,
    pipelines: 0,
    encoders: 0,
    submits: 0,
  };
  readonly limits: GPUSupportedLimits;
  private pipelines = new Map<string, { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout }>();
  private owned: GPUBuffer[] = [];
  private errors: string[] = [];
  readonly scratch: ScratchPool;

  constructor(readonly device: GPUDevice, readonly info: GpuInfo) {
    this.limits = device.limits;
    this.scratch = new ScratchPool(this);
    const c = this.counters;
    const d = device as unknown as Record<string, unknown>;
    // count what is created on this device, whoever creates it
    const wrap = <F extends (...a: never[]) => unknown>(
      name: string,
      count: (...a: Parameters<F>) => void,
    ) => {
      const orig = (d[name] as F).bind(device);
      d[name] = (...a: Parameters<F>) => {
        count(...a);
        return orig(...a);
      };
    };
    wrap<GPUDevice["createBuffer"]>("createBuffer", (desc) => {
      c.buffers++;
      c.bufferBytes += desc.size;
    });
    wrap<GPUDevice["createBindGroup"]>("createBindGroup", () => c.bindGroups++);
    wrap<GPUDevice["createComputePipeline"]>("createComputePipeline", () => c.pipelines++);
    wrap<GPUDevice["createCommandEncoder"]>("createCommandEncoder", () => c.encoders++);
    const queue = device.queue, submit = queue.submit.bind(queue);
    queue.submit = (buffers: GPUCommandBuffer[]) => {
      c.submits++;
      return submit(buffers);
    };
    device.addEventListener("uncapturederror", (e) => {
      const message = (e as GPUUncapturedErrorEvent).error.message;
      this.errors.push(message);
      console.error(`WebGPU error: ${message}`);
    });
  }

  static async create(opts: GpuChoice = {}): Promise<GpuRuntime> {
    const { device, info } = await requestGpu(opts);
    return new GpuRuntime(device, info);
  }

  /** A zero-filled storage buffer (WebGPU zero-initialises new buffers), kept until `destroy`. */
  buffer(
    bytes: number,
    label: string,
    usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  ): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    if (size > this.limits.maxBufferSize) {
      throw new Error(
        `${label}: ${size} bytes exceed this device's maxBufferSize ${this.limits.maxBufferSize}`,
      );
    }
    const b = this.device.createBuffer({ label, size, usage });
    this.owned.push(b);
    return b;
  }

  /** Bytes of GPU memory the runtime's buffers hold now (staging included). */
  get allocatedBytes(): number {
    return this.owned.reduce((s, b) => s + b.size, 0);
  }

  /** The compute pipeline of `code` (entry point `main`), compiled once per runtime. */
  pipeline(code: string, label = ""): { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout } {
    let p = this.pipelines.get(code);
    if (!p) {
      const pipeline = this.device.createComputePipeline({
        label,
        layout: "auto",
        compute: { module: this.device.createShaderModule({ label, code }), entryPoint: "main" },
      });
      this.pipelines.set(code, p = { pipeline, layout: pipeline.getBindGroupLayout(0) });
    }
    return p;
  }

  /** A Dispatcher that records into `list` (scratch from the runtime's pool). */
  recorder(list: Recorded[]): Dispatcher<GpuView> {
    const limits: DispatchLimits = {
      maxComputeWorkgroupStorageSize: this.limits.maxComputeWorkgroupStorageSize,
      maxStorageBuffersPerShaderStage: this.limits.maxStorageBuffersPerShaderStage,
    };
    const maxBinding = this.limits.maxStorageBufferBindingSize;
    const align = this.limits.minStorageBufferOffsetAlignment;
    const maxGroups = this.limits.maxComputeWorkgroupsPerDimension;
    return {
      limits,
      alloc: (floats, label) => this.scratch.take(floats * 4, label),
      release: (v) => this.scratch.give(v),
      dispatch: (label, code, bufs, groups, flops) => {
        if (bufs.length > this.limits.maxStorageBuffersPerShaderStage) {
          throw new Error(
            `${label}: ${bufs.length} storage buffers, this device allows ${this.limits.maxStorageBuffersPerShaderStage}`,
          );
        }
        for (const v of bufs) {
          if (v.size > maxBinding) {
            throw new Error(
              `${label}: a binding of ${v.size} bytes exceeds maxStorageBufferBindingSize ${maxBinding}`,
            );
          }
          if (v.offset % align !== 0) {
            throw new Error(`${label}: binding offset ${v.offset} is not a multiple of ${align}`);
          }
        }
        if (groups.some((g) => g > maxGroups || g < 1)) {
          throw new Error(`${label}: workgroups ${groups} out of range`);
        }
        const p = this.pipeline(code, label);
        const bindGroup = this.device.createBindGroup({
          label,
          layout: p.layout,
          entries: bufs.map((v, i) => ({
            binding: i,
            resource: { buffer: v.buffer, offset: v.offset, size: v.size },
          })),
        });
        const boundBytes = bufs.reduce((s, v) => s + v.size, 0);
        list.push({
          label,
          pipeline: p.pipeline,
          bindGroup,
          groups,
          boundBytes,
          ...(flops ? { flops } : {}),
        });
      },
    };
  }

  /** Encodes `list` into one compute pass (timestamps at its start and end when given). */
  encode(enc: GPUCommandEncoder, list: Recorded[], timestamps?: GPUComputePassTimestampWrites): void {
    const pass = enc.beginComputePass(timestamps ? { timestampWrites: timestamps } : {});
    let last: GPUComputePipeline | undefined;
    for (const r of list) {
      if (r.pipeline !== last) pass.setPipeline(last = r.pipeline);
      pass.setBindGroup(0, r.bindGroup);
      pass.dispatchWorkgroups(r.groups[0], r.groups[1], r.groups[2]);
    }
    pass.end();
  }

  /**
   * Runs `list` one dispatch per submission, waiting for the GPU after each and calling `before` first:
   * a diagnostic that names the dispatch a device hangs or faults on (never for training: it waits).
   */
  async runEach(list: Recorded[], before: (label: string, index: number) => void): Promise<void> {
    for (const [i, r] of list.entries()) {
      before(r.label, i);
      const enc = this.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(r.pipeline);
      pass.setBindGroup(0, r.bindGroup);
      pass.dispatchWorkgroups(r.groups[0], r.groups[1], r.groups[2]);
      pass.end();
      this.device.queue.submit([enc.finish()]);
      await this.device.queue.onSubmittedWorkDone();
    }
    await this.check();
  }

  /**
   * Runs `list` once with one pass per dispatch, each timed, and returns the GPU milliseconds of each
   * dispatch (waits for the GPU: for profiling, not for training).
   */
  async profile(list: Recorded[]): Promise<number[]> {
    if (!this.info.timestamps) throw new Error("profile: this device has no timestamp-query feature");
    const n = list.length;
    const querySet = this.device.createQuerySet({ type: "timestamp", count: 2 * n });
    const resolve = this.device.createBuffer({
      size: 16 * n,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    const staging = this.device.createBuffer({
      size: 16 * n,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const enc = this.device.createCommandEncoder();
    list.forEach((r, i) => {
      const pass = enc.beginComputePass({
        timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
      });
      pass.setPipeline(r.pipeline);
      pass.setBindGroup(0, r.bindGroup);
      pass.dispatchWorkgroups(...r.groups);
      pass.end();
    });
    enc.resolveQuerySet(querySet, 0, 2 * n, resolve, 0);
    enc.copyBufferToBuffer(resolve, 0, staging, 0, 16 * n);
    this.device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(staging.getMappedRange().slice(0));
    staging.unmap();
    for (const b of [staging, resolve]) b.destroy();
    querySet.destroy();
    return list.map((_, i) => Number(t[2 * i + 1] - t[2 * i]) / 1e6);
  }

  /** Copies `bytes` from `src` at `offset` to the host (waits: for checkpoints and tests, not per step). */
  async read(src: GPUBuffer, offset: number, bytes: number): Promise<ArrayBuffer> {
    const size = Math.ceil(bytes / 4) * 4;
    const staging = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(src, offset, staging, 0, size);
    this.device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const out = staging.getMappedRange().slice(0, bytes);
    staging.unmap();
    staging.destroy();
    return out;
  }

  /** Validation and compilation errors reported so far (WebGPU reports them asynchronously). */
  async check(): Promise<void> {
    await this.device.queue.onSubmittedWorkDone();
    const errors = this.errors.splice(0);
    if (errors.length) throw new Error(`WebGPU errors: ${summarizeErrors(errors)}`);
  }

  destroy(): void {
    for (const b of this.owned) b.destroy();
    this.owned = [];
    this.device.destroy();
  }
}

/**
 * A ring of staging buffers for read-backs that never block a step: a step that wants a read-back
 * takes the next slot (waiting only if that slot's previous read-back has not come back yet: the host is
 * then `slots` read-backs ahead of the GPU), encodes copies into it, and after submitting calls
 * `collect`, which maps it asynchronously.
 */
export class ReadbackRing {
  private staging: GPUBuffer[];
  private pending: (Promise<void> | undefined)[];
  private next = 0;
  /** read-backs collected whose mapAsync is not issued yet (see `collect`) */
  private deferred: { slot: number; map: () => void }[] = [];
  private timer?: ReturnType<typeof setTimeout>;

  constructor(rt: GpuRuntime, readonly bytes: number, readonly slots: number) {
    this.staging = Array.from(
      { length: slots },
      (_, i) => rt.buffer(bytes, `readback ${i}`, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST),
    );
    this.pending = new Array(slots).fill(undefined);
  }

  /** The next free slot's staging buffer (after its previous read-back has been consumed). */
  async acquire(): Promise<{ slot: number; buffer: GPUBuffer }> {
    const slot = this.next;
    this.next = (this.next + 1) % this.slots;
    // only a slot whose own map is still deferred needs the flush (which waits for the GPU); otherwise the
    // wait lets the event loop finish that map while the GPU still runs earlier submissions
    if (this.deferred.some((d) => d.slot === slot)) this.flush();
    if (this.pending[slot]) await this.pending[slot];
    return { slot, buffer: this.staging[slot] };
  }

  /**
   * After the submission that filled `slot`: its contents, once the GPU has written them. The map is
   * deferred to the next `flush`: the next submission's (after it is encoded, before it is submitted), or a
   * timer when none comes. Deno's mapAsync does not return until the GPU has finished every submission in
   * flight (measured on the H200: a 64-step 972M submission's map call took 2.28 ms a step, its whole GPU
   * time), so a map issued as soon as its submission went in kept the GPU idle while the host encoded the
   * next one: encoding and the GPU's work added up instead of overlapping.
   */
  collect(slot: number): Promise<ArrayBuffer> {
    const buffer = this.staging[slot];
    const data = new Promise<ArrayBuffer>((resolve, reject) => {
      this.deferred.push({
        slot,
        map: () =>
          buffer.mapAsync(GPUMapMode.READ).then(() => {
            const copy = buffer.getMappedRange().slice(0);
            buffer.unmap();
            resolve(copy);
          }, reject),
      });
    });
    this.pending[slot] = data.then(() => {}, () => {});
    this.timer ??= setTimeout(() => this.flush(), 0);
    return data;
  }

  /** Issues the deferred maps (returns once the GPU has finished what was submitted). */
  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const maps = this.deferred;
    this.deferred = [];
    for (const { map } of maps) map();
  }

  /** Waits until every read-back in flight has come back. */
  async drain(): Promise<void> {
    this.flush();
    await Promise.all(this.pending.filter((p) => p));
  }

  /** Drops the maps not issued yet (the device is going away; nobody may await them). */
  cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.deferred = [];
  }
}
