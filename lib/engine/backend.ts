/**
 * Where the engine's step runs: "webgpu" (WGSL on a GPUDevice of its own, kernels/webgpu/device.ts) or
 * "js" (the kernels' plain-JS twins on float32 typed arrays; the seed of the CPU engine, where WebAssembly
 * kernels will take the twins' place behind the same EngineOps). Both give the engine the same few
 * things: buffers allocated once, an op set whose calls are recorded into programs, and a submission that
 * runs programs in order, writes the per-step host values, and copies a few floats out asynchronously.
 */
import { type EngineOps, type JsBuffer, jsOps } from "../kernels/js/ops.ts";
import { webgpuOps } from "../kernels/webgpu/ops.ts";
import { wasmOps } from "../kernels/wasm/ops.ts";
import { getPool, reserve, threadCount, workerFailure } from "../kernels/wasm/pool.ts";
import {
  type GpuChoice,
  type GpuCounters,
  GpuRuntime,
  type GpuView,
  ReadbackRing,
  type Recorded,
} from "../kernels/webgpu/device.ts";

export type EngineBackendName = "webgpu" | "wasm" | "js" | "plan";

/** Views into a buffer start at multiples of this many floats (256 bytes: any device's binding alignment). */
export const ALIGN = 64;
export const align = (floats: number) => Math.ceil(floats / ALIGN) * ALIGN;

/** A recorded program: the ops' labels in order, and (webgpu) the dispatches. */
export interface Program {
  readonly labels: string[];
}

/** What a submission copies back: `floats` floats of `from`, with the step timestamps when timing. */
export interface Readback {
  floats: Float32Array;
  /** webgpu with timing: GPU milliseconds of each timed submission since the last read-back, by slot */
  gpuMs?: Float64Array;
}

export interface SubmitOptions<B> {
  /** host values written before the programs run (ids, per-step optimizer values) */
  writes?: [B, Float32Array | Int32Array][];
  /** copy `floats` floats of `from` out after the programs ran */
  readback?: { from: B; floats: number };
  /** (webgpu, timing on) record this submission's GPU start and end into timestamp pair `timestampSlot` */
  timestampSlot?: number;
}

export interface Backend<B> {
  readonly name: EngineBackendName;
  /** A zero-filled float32 buffer of `floats` values. */
  f32(floats: number, label: string): B;
  /** A zero-filled int32 buffer. */
  i32(count: number, label: string): B;
  /** Floats [offset, offset + count) of `buf`; offset a multiple of ALIGN. */
  view(buf: B, offset: number, count: number): B;
  /** Records the ops `build` calls into a program (no work is done until it is submitted). */
  record(build: (ops: EngineOps<B>) => void): Program;
  /**
   * Runs `programs` in order (webgpu: one encoder, one compute pass, one queue submission). Resolves once
   * queued (waiting only when every read-back slot is in flight); `readback` then resolves with the copy.
   */
  submit(programs: Program[], opts?: SubmitOptions<B>): Promise<{ readback?: Promise<Readback> }>;
  /** Host upload of `data` into `buf` at float offset `offset` (outside any step). */
  write(buf: B, data: Float32Array | Int32Array, offset?: number): void;
  /** Host copy of `count` floats of `buf` from `offset` (waits for the device: not for the step loop). */
  read(buf: B, offset?: number, count?: number): Promise<Float32Array>;
  /** Waits for every submission and read-back in flight; throws device errors reported so far. */
  finish(): Promise<void>;
  /** GPU milliseconds of each dispatch of `programs`, run once with per-dispatch timestamps (webgpu only). */
  profile?(programs: Program[]): Promise<{ label: string; ms: number; boundBytes: number; flops?: number }[]>;
  /**
   * (webgpu) host milliseconds spent by submissions so far: waiting for a free read-back buffer, encoding
   * the passes, issuing earlier read-backs' maps (Deno's mapAsync returns once the GPU has finished what was
   * submitted: waiting, not work), and inside queue.submit
   */
  readonly hostTimes?: { waitMs: number; encodeMs: number; submitMs: number; mapMs: number };
  /** Each dispatch of `programs` in a submission of its own, `before` called first (webgpu diagnostics). */
  runEach?(programs: Program[], before: (label: string, index: number) => void): Promise<void>;
  /** Counters of what was created on the device (webgpu). */
  readonly counters?: GpuCounters;
  /** The most floats one binding (one buffer view an op reads) may span. */
  readonly maxBindingFloats: number;
  /** Bytes of memory the backend holds (device buffers, or typed arrays). */
  readonly allocatedBytes: number;
  readonly device: string;
  destroy(): void;
}

/** A kernel label's share of a profile: summed device milliseconds, dispatches, bound bytes and FLOPs. */
export interface LabelProfile {
  label: string;
  ms: number;
  count: number;
  boundBytes: number;
  flops: number;
}

/** `be.profile(programs)` summed by dispatch label, the slowest label first. */
export async function profileByLabel<B>(be: Backend<B>, programs: Program[]): Promise<LabelProfile[]> {
  if (!be.profile) throw new Error(`profile: not on the ${be.name} backend`);
  const by = new Map<string, LabelProfile>();
  for (const t of await be.profile(programs)) {
    const e = by.get(t.label) ?? { label: t.label, ms: 0, count: 0, boundBytes: 0, flops: 0 };
    e.ms += t.ms;
    e.count++;
    e.boundBytes += t.boundBytes;
    e.flops += t.flops ?? 0;
    by.set(t.label, e);
  }
  return [...by.values()].sort((a, b) => b.ms - a.ms);
}

// ---------------------------------------------------------------------------------------------------
// js

class JsProgram implements Program {
  readonly labels: string[] = [];
  readonly steps: (() => void)[] = [];
  readonly flops: (number | undefined)[] = [];
}

/** A copy of `count` values of a buffer as float32 bits (an int32 buffer's bits kept, as a GPU copy does). */
function bitsOf(buf: JsBuffer, offset: number, count: number): Float32Array {
  const out = new Float32Array(count);
  if (buf instanceof Int32Array) new Int32Array(out.buffer).set(buf.subarray(offset, offset + count));
  else out.set(buf.subarray(offset, offset + count));
  return out;
}

export class JsBackend implements Backend<JsBuffer> {
  readonly name: EngineBackendName = "js";
  get device(): string {
    return "JS (float32 typed arrays)";
  }
  readonly maxBindingFloats = Infinity;
  allocatedBytes = 0;

  f32(floats: number): JsBuffer {
    this.allocatedBytes += 4 * floats;
    return new Float32Array(floats);
  }
  i32(count: number): JsBuffer {
    this.allocatedBytes += 4 * count;
    return new Int32Array(count);
  }
  view(buf: JsBuffer, offset: number, count: number): JsBuffer {
    if (offset % ALIGN !== 0 || offset + count > buf.length) {
      throw new Error(`view [${offset}, +${count}) of ${buf.length}`);
    }
    return buf.subarray(offset, offset + count);
  }
  record(build: (ops: EngineOps<JsBuffer>) => void): Program {
    const p = new JsProgram();
    build(jsOps((label, run, flops) => {
      p.labels.push(label);
      p.steps.push(run);
      p.flops.push(flops);
    }));
    return p;
  }
  submit(programs: Program[], opts: SubmitOptions<JsBuffer> = {}) {
    for (const [buf, data] of opts.writes ?? []) buf.set(data);
    for (const p of programs) for (const s of (p as JsProgram).steps) s();
    const r = opts.readback;
    return Promise.resolve({ readback: r && Promise.resolve({ floats: bitsOf(r.from, 0, r.floats) }) });
  }
  write(buf: JsBuffer, data: Float32Array | Int32Array, offset = 0): void {
    buf.set(data, offset);
  }
  read(buf: JsBuffer, offset = 0, count = buf.length - offset): Promise<Float32Array> {
    return Promise.resolve(bitsOf(buf, offset, count));
  }
  finish(): Promise<void> {
    return Promise.resolve();
  }
  /** Wall milliseconds of each op of `programs`, run once in order (the CPU's profile: ops run synchronously). */
  profile(programs: Program[]): Promise<{ label: string; ms: number; boundBytes: number; flops?: number }[]> {
    const out: { label: string; ms: number; boundBytes: number; flops?: number }[] = [];
    for (const p of programs as JsProgram[]) {
      p.steps.forEach((run, i) => {
        const t0 = performance.now();
        run();
        out.push({ label: p.labels[i], ms: performance.now() - t0, boundBytes: 0, flops: p.flops[i] });
      });
    }
    return Promise.resolve(out);
  }
  destroy(): void {}
}

// ---------------------------------------------------------------------------------------------------
// wasm: the CPU engine. Buffers are views of the WebAssembly kernels' shared memory, held for the engine's
// life (wasm/pool.ts reserve), so the kernels read and write them in place; the ops are wasm/ops.ts's.

export class WasmBackend extends JsBackend {
  override readonly name = "wasm";
  private regions: { release: () => void }[] = [];
  constructor() {
    super();
    getPool(); // throws, saying why, where WebAssembly SIMD or shared memory is missing
  }
  override get device(): string {
    const why = workerFailure();
    return `WebAssembly SIMD, ${threadCount()} threads` + (why ? ` (workers failed: ${why})` : "");
  }
  /** A zero-filled region of the kernels' memory: its buffer and byte address. */
  private region(bytes: number): { buffer: ArrayBufferLike; start: number } {
    const r = reserve(bytes);
    this.regions.push(r);
    this.allocatedBytes += bytes;
    return { buffer: getPool().memory.buffer, start: r.start };
  }
  override f32(floats: number): JsBuffer {
    const { buffer, start } = this.region(4 * Math.max(1, floats));
    return new Float32Array(buffer, start, floats);
  }
  override i32(count: number): JsBuffer {
    const { buffer, start } = this.region(4 * Math.max(1, count));
    return new Int32Array(buffer, start, count);
  }
  override record(build: (ops: EngineOps<JsBuffer>) => void): Program {
    const p = new JsProgram();
    build(wasmOps((label, run, flops) => {
      p.labels.push(label);
      p.steps.push(run);
      p.flops.push(flops);
    }));
    return p;
  }
  override destroy(): void {
    for (const r of this.regions.splice(0)) r.release();
    this.allocatedBytes = 0;
  }
}

// ---------------------------------------------------------------------------------------------------
// webgpu

class GpuProgram implements Program {
  readonly labels: string[] = [];
  constructor(readonly list: Recorded[]) {}
}

export interface GpuBackendOptions extends GpuChoice {
  /** floats a read-back may copy (the staging buffers' size) */
  readbackFloats?: number;
  /** read-backs in flight at most (staging buffers; default 8) */
  readbackSlots?: number;
  /** timestamp pairs between read-backs (timing on when > 0 and the device has timestamp-query) */
  timestampSlots?: number;
}

export class GpuBackend implements Backend<GpuView> {
  readonly name = "webgpu";
  readonly hostTimes = { waitMs: 0, encodeMs: 0, submitMs: 0, mapMs: 0 };
  private ring: ReadbackRing;
  private querySet?: GPUQuerySet;
  private resolveBuffer?: GPUBuffer;
  /** slots whose timestamps were written since the last resolve: only those may be resolved */
  private written = new Set<number>();
  private readonly slotsTimed: number;
  private readonly readbackFloats: number;

  private constructor(readonly rt: GpuRuntime, opts: GpuBackendOptions) {
    this.readbackFloats = opts.readbackFloats ?? 1024;
    this.slotsTimed = rt.info.timestamps ? (opts.timestampSlots ?? 0) : 0;
    const tsBytes = 16 * this.slotsTimed;
    this.ring = new ReadbackRing(rt, 4 * this.readbackFloats + tsBytes, opts.readbackSlots ?? 8);
    if (this.slotsTimed > 0) {
      this.querySet = rt.device.createQuerySet({ type: "timestamp", count: 2 * this.slotsTimed });
      // one 256-byte line per slot: resolveQuerySet's destination offset must be a multiple of 256
      this.resolveBuffer = rt.buffer(
        256 * this.slotsTimed,
        "timestamps",
        GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      );
    }
  }

  static async create(opts: GpuBackendOptions = {}): Promise<GpuBackend> {
    return new GpuBackend(await GpuRuntime.create(opts), opts);
  }

  get device(): string {
    return this.rt.info.description + (this.rt.info.fallback ? " (software fallback adapter)" : "");
  }
  get counters(): GpuCounters {
    return this.rt.counters;
  }
  get allocatedBytes(): number {
    return this.rt.allocatedBytes;
  }
  get maxBindingFloats(): number {
    return Math.floor(this.rt.limits.maxStorageBufferBindingSize / 4);
  }
  /** Whether submissions can be timed (the device has timestamp-query and slots were asked for). */
  get timing(): boolean {
    return this.slotsTimed > 0;
  }

  f32(floats: number, label: string): GpuView {
    const size = 4 * Math.max(1, floats);
    return { buffer: this.rt.buffer(size, label), offset: 0, size };
  }
  i32(count: number, label: string): GpuView {
    return this.f32(count, label);
  }
  view(buf: GpuView, offset: number, count: number): GpuView {
    if (offset % ALIGN !== 0 || 4 * (offset + count) > buf.size) {
      throw new Error(`view [${offset}, +${count}) of a buffer of ${buf.size / 4} floats`);
    }
    return { buffer: buf.buffer, offset: buf.offset + 4 * offset, size: 4 * Math.max(1, count) };
  }
  record(build: (ops: EngineOps<GpuView>) => void): Program {
    const list: Recorded[] = [];
    const p = new GpuProgram(list);
    build(webgpuOps(this.rt.recorder(list)));
    p.labels.push(...list.map((r) => r.label));
    return p;
  }

  async submit(programs: Program[], opts: SubmitOptions<GpuView> = {}) {
    const r = opts.readback;
    if (r && r.floats > this.readbackFloats) {
      throw new Error(`readback of ${r.floats} floats > ${this.readbackFloats}`);
    }
    const t0 = performance.now();
    const queue = this.rt.device.queue;
    for (const [buf, data] of opts.writes ?? []) {
      queue.writeBuffer(buf.buffer, buf.offset, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
    }
    // encoded while the GPU still runs earlier submissions, then the staging slot taken (a wait there lets
    // the event loop run while the GPU is still busy), then earlier maps issued, then this submitted
    const enc = this.rt.device.createCommandEncoder();
    const slot = opts.timestampSlot === undefined || !this.querySet
      ? undefined
      : opts.timestampSlot % this.slotsTimed;
    const ts = slot !== undefined
      ? { querySet: this.querySet!, beginningOfPassWriteIndex: 2 * slot, endOfPassWriteIndex: 2 * slot + 1 }
      : undefined;
    this.rt.encode(enc, programs.flatMap((p) => (p as GpuProgram).list), ts);
    if (slot !== undefined) this.written.add(slot);
    const t1 = performance.now();
    const staging = r ? await this.ring.acquire() : undefined;
    const t2 = performance.now();
    if (r && staging) {
      enc.copyBufferToBuffer(r.from.buffer, r.from.offset, staging.buffer, 0, 4 * r.floats);
      // Resolve only the slots written since the last resolve. Vulkan's query copy waits for each query
      // to become available, so resolving one never written (a flush after fewer steps than slots)
      // hangs the device: it did on the H200. Slots not written keep stale bytes that nobody reads.
      for (const s of this.written) {
        enc.resolveQuerySet(this.querySet!, 2 * s, 2, this.resolveBuffer!, 256 * s);
        enc.copyBufferToBuffer(
          this.resolveBuffer!,
          256 * s,
          staging.buffer,
          4 * this.readbackFloats + 16 * s,
          16,
        );
      }
      this.written.clear();
    }
    const commands = enc.finish();
    const t3 = performance.now();
    // earlier read-backs' maps now, while nothing more is queued: they return when the GPU is done with
    // them, and this submission follows at once
    this.ring.flush();
    const t4 = performance.now();
    queue.submit([commands]);
    const t5 = performance.now();
    this.hostTimes.encodeMs += t1 - t0 + (t3 - t2);
    this.hostTimes.waitMs += t2 - t1;
    this.hostTimes.mapMs += t4 - t3;
    this.hostTimes.submitMs += t5 - t4;
    if (!r || !staging) return {};
    const floats = r.floats, timed = this.slotsTimed, offset = 4 * this.readbackFloats;
    return {
      readback: this.ring.collect(staging.slot).then((data) => {
        const out: Readback = { floats: new Float32Array(data, 0, floats).slice() };
        if (timed > 0) {
          const t = new BigUint64Array(data, offset, 2 * timed);
          out.gpuMs = Float64Array.from({ length: timed }, (_, i) => Number(t[2 * i + 1] - t[2 * i]) / 1e6);
        }
        return out;
      }),
    };
  }

  write(buf: GpuView, data: Float32Array | Int32Array, offset = 0): void {
    this.rt.device.queue.writeBuffer(
      buf.buffer,
      buf.offset + 4 * offset,
      data.buffer as ArrayBuffer,
      data.byteOffset,
      data.byteLength,
    );
  }
  async read(buf: GpuView, offset = 0, count = buf.size / 4 - offset): Promise<Float32Array> {
    return new Float32Array(await this.rt.read(buf.buffer, buf.offset + 4 * offset, 4 * count));
  }
  async finish(): Promise<void> {
    await this.ring.drain();
    await this.rt.check();
  }
  runEach(programs: Program[], before: (label: string, index: number) => void): Promise<void> {
    return this.rt.runEach(programs.flatMap((p) => (p as GpuProgram).list), before);
  }
  async profile(
    programs: Program[],
  ): Promise<{ label: string; ms: number; boundBytes: number; flops?: number }[]> {
    const list = programs.flatMap((p) => (p as GpuProgram).list);
    const ms = await this.rt.profile(list);
    return list.map((r, i) => ({ label: r.label, ms: ms[i], boundBytes: r.boundBytes, flops: r.flops }));
  }
  destroy(): void {
    this.ring.cancel();
    this.querySet?.destroy();
    this.rt.destroy();
  }
}

// ---------------------------------------------------------------------------------------------------
// plan: what webgpu would record, without a device (dispatch counts, workgroups, memory), for planning
// shapes on a machine without a GPU. Submitting does nothing.

export interface PlannedDispatch {
  label: string;
  groups: [number, number, number];
  /** bytes of WGSL */
  code: number;
}

class PlanProgram implements Program {
  readonly labels: string[] = [];
  readonly dispatches: PlannedDispatch[] = [];
}

export class PlanBackend implements Backend<GpuView> {
  readonly name = "plan";
  readonly device = "plan (no device)";
  allocatedBytes = 0;
  private free: number[] = [];
  private fake = { size: 0 } as unknown as GPUBuffer;
  constructor(
    readonly limits = { maxComputeWorkgroupStorageSize: 32768, maxStorageBuffersPerShaderStage: 16 },
    readonly maxBindingFloats = 2 ** 29,
  ) {}
  f32(floats: number): GpuView {
    const size = 4 * Math.max(1, floats);
    this.allocatedBytes += Math.ceil(size / 16) * 16;
    return { buffer: this.fake, offset: 0, size };
  }
  i32(count: number): GpuView {
    return this.f32(count);
  }
  view(buf: GpuView, offset: number, count: number): GpuView {
    return { buffer: buf.buffer, offset: buf.offset + 4 * offset, size: 4 * Math.max(1, count) };
  }
  record(build: (ops: EngineOps<GpuView>) => void): Program {
    const p = new PlanProgram();
    build(webgpuOps<GpuView>({
      limits: this.limits,
      alloc: (floats) => {
        // the runtime's pool: reuse the smallest released buffer that fits
        const size = 4 * Math.max(1, floats);
        this.free.sort((a, b) => a - b);
        const i = this.free.findIndex((f) => f >= size);
        const got = i >= 0 ? this.free.splice(i, 1)[0] : (this.allocatedBytes += size, size);
        return { buffer: this.fake, offset: 0, size: got };
      },
      release: (v) => this.free.push(v.size),
      dispatch: (label, code, _bufs, groups) => {
        p.labels.push(label);
        p.dispatches.push({ label, groups, code: code.length });
      },
    }));
    return p;
  }
  submit() {
    return Promise.resolve({});
  }
  write(): void {}
  read(_buf: GpuView, _offset = 0, count = 0): Promise<Float32Array> {
    return Promise.resolve(new Float32Array(count));
  }
  finish(): Promise<void> {
    return Promise.resolve();
  }
  destroy(): void {}
  /** The dispatches of recorded programs. */
  static dispatches(programs: Program[]): PlannedDispatch[] {
    return programs.flatMap((p) => (p as PlanProgram).dispatches);
  }
}

/** A backend by name; webgpu options as GpuBackendOptions. */
export async function createBackend(
  name: EngineBackendName,
  opts: GpuBackendOptions = {},
): Promise<Backend<GpuView> | Backend<JsBuffer>> {
  if (name === "js") return new JsBackend();
  if (name === "wasm") return new WasmBackend();
  if (name === "webgpu") return await GpuBackend.create(opts);
  if (name === "plan") return new PlanBackend();
  throw new Error(`unknown engine backend "${name}" (webgpu, wasm, js or plan)`);
}
