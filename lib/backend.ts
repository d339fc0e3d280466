/**
 * Choosing and starting a TensorFlow.js backend.
 *
 * Order of preference: a real (non-fallback) WebGPU adapter, then wasm (XNNPACK, SIMD), then cpu (pure
 * JS). `--backend NAME` or MAMBABYTE_BACKEND=NAME override the choice; "tensorflow" (tfjs-node or
 * tfjs-node-gpu) is supported for users who have those packages installed: they cannot be installed on
 * machines without internet access because their install script downloads libtensorflow.
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import v8 from "node:v8";
import vm from "node:vm";

tf.env().set("PROD", true);

/**
 * tfjs-backend-webgpu asks its device for the default limit of 8 storage buffers per shader stage; the
 * fused selective-scan kernels bind up to 16. Re-register the backend with a device that asks for what
 * the adapter allows (everything else as tfjs-backend-webgpu 4.22 requests it).
 */
tf.removeBackend("webgpu");
tf.registerBackend("webgpu", async () => {
  // deno-lint-ignore no-explicit-any
  const gpu = (navigator as any).gpu;
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  const limits = adapter.limits;
  const requiredFeatures = ["timestamp-query", "bgra8unorm-storage"].filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxBufferSize: limits.maxBufferSize,
      maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
      maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
    },
  });
  // WebGPU reports invalid shaders and commands asynchronously: make them visible
  device.addEventListener("uncapturederror", (e: { error: { message: string } }) => {
    console.error(`WebGPU error: ${e.error.message}`);
  });
  return new WebGPUBackend(device, adapter.info);
}, 3);

/**
 * tfjs 4.22's gradients of Sum and Mean multiply by `ones(x.shape)`, which is built as a host array and
 * uploaded: on the webgpu backend that is a large host-to-GPU copy in every backward pass (measured on an
 * H200: tf.grads of sum(y) over 12.6M elements blocked for ~2.5 s). Same math with `onesLike`, which the
 * backends fill on the device.
 */
function reducedAxes(axis: unknown, rank: number): number[] {
  const list = axis === undefined || axis === null
    ? [...Array(rank).keys()]
    : Array.isArray(axis)
    ? axis
    : [axis];
  return list.map((a: number) => (a < 0 ? a + rank : a));
}
for (const kernelName of ["Sum", "Mean"]) {
  tf.registerGradient({
    kernelName,
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const axes = reducedAxes((attrs as { axis?: unknown }).axis, x.rank);
      const expandedShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
      const count = kernelName === "Mean" ? axes.reduce((n, a) => n * x.shape[a], 1) : 1;
      return {
        x: () => {
          const g = tf.mul(tf.reshape(dy as tf.Tensor, expandedShape), tf.onesLike(x));
          return count === 1 ? g : tf.div(g, count);
        },
      };
    },
  });
}

export type BackendName = "webgpu" | "wasm" | "cpu" | "tensorflow";
export const BACKENDS: readonly BackendName[] = ["webgpu", "wasm", "cpu", "tensorflow"];

export interface BackendInfo {
  backend: BackendName;
  /** Human-readable device: the GPU adapter's description, or the CPU model. */
  device: string;
  /** Why this backend was chosen (auto-detection or an explicit override). */
  reason: string;
}

let current: BackendInfo | undefined;

/** The backend started by `initBackend`, or undefined before it ran. */
export function backendInfo(): BackendInfo | undefined {
  return current;
}

/** Describes the WebGPU adapter Deno would use, or undefined when none exists. */
export async function webgpuAdapter(): Promise<{ description: string; fallback: boolean } | undefined> {
  const gpu = (globalThis.navigator as any)?.gpu;
  if (!gpu) return undefined;
  // Mesa's llvmpipe answers as a fallback adapter: usable for correctness tests, never chosen by default.
  if (!Deno.env.get("XDG_RUNTIME_DIR")) Deno.env.set("XDG_RUNTIME_DIR", "/tmp"); // quiets Mesa's warning
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) return undefined;
  const info = adapter.info ?? {};
  return {
    description: String(info.description || info.device || info.vendor || "unknown GPU"),
    fallback: Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter),
  };
}

function cpuModel(): string {
  try {
    const text = Deno.readTextFileSync("/proc/cpuinfo");
    const model = text.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim();
    return `${model ?? "CPU"} (${navigator.hardwareConcurrency} cores)`;
  } catch {
    return `CPU (${navigator.hardwareConcurrency} cores)`;
  }
}

/** The automatic choice for a given WebGPU adapter: only a real (non-fallback) GPU gets webgpu. */
export function autoBackend(adapter: { fallback: boolean } | undefined): "webgpu" | "wasm" {
  return adapter && !adapter.fallback ? "webgpu" : "wasm";
}

/** Reads `--backend NAME` / `--backend=NAME` from argv, else MAMBABYTE_BACKEND. */
export function requestedBackend(args: string[] = Deno.args): BackendName | undefined {
  let name: string | undefined;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--backend") name = args[i + 1];
    else if (args[i].startsWith("--backend=")) name = args[i].slice("--backend=".length);
  }
  name ??= Deno.env.get("MAMBABYTE_BACKEND") || undefined;
  if (name === undefined || name === "auto") return undefined;
  if (!BACKENDS.includes(name as BackendName)) {
    throw new Error(
      `unknown backend "${name}" (from --backend or MAMBABYTE_BACKEND); expected one of ` +
        `${BACKENDS.join(", ")} or auto`,
    );
  }
  return name as BackendName;
}

async function startTensorflow(): Promise<void> {
  // Optional: only present where the user installed tfjs-node(-gpu) themselves.
  const errors: string[] = [];
  for (const pkg of ["npm:@tensorflow/tfjs-node-gpu@4.22.0", "npm:@tensorflow/tfjs-node@4.22.0"]) {
    try {
      await import(pkg);
      if (await tf.setBackend("tensorflow")) return;
    } catch (e) {
      errors.push(`${pkg}: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  throw new Error(
    "the tensorflow backend needs @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node, whose install " +
      "downloads libtensorflow (run with --allow-scripts on a machine with internet access). Tried:\n  " +
      errors.join("\n  "),
  );
}

/**
 * Starts a backend and returns what was chosen. Prints one line naming backend and device unless
 * `quiet`. Calling it again with the same request is cheap.
 */
export async function initBackend(
  opts: { backend?: BackendName; quiet?: boolean; allowFallbackGpu?: boolean } = {},
): Promise<BackendInfo> {
  const wanted = opts.backend ?? requestedBackend();
  if (current && (!wanted || wanted === current.backend)) return current;
  let info: BackendInfo;
  if (wanted === "tensorflow") {
    await startTensorflow();
    info = { backend: "tensorflow", device: "libtensorflow", reason: "requested" };
  } else if (wanted === "webgpu" || wanted === undefined) {
    const adapter = await webgpuAdapter();
    const usable = adapter &&
      (autoBackend(adapter) === "webgpu" || wanted === "webgpu" || opts.allowFallbackGpu);
    if (usable && await tf.setBackend("webgpu")) {
      await tf.ready();
      info = {
        backend: "webgpu",
        device: adapter!.description + (adapter!.fallback ? " (software fallback adapter)" : ""),
        reason: wanted ? "requested" : "a GPU adapter is present",
      };
    } else if (wanted === "webgpu") {
      throw new Error(
        "backend webgpu was requested but no WebGPU adapter is available (on Debian, " +
          "mesa-vulkan-drivers gives a software one; on a GPU machine the Vulkan loader and driver are needed)",
      );
    } else {
      info = await startCpuLike(
        "wasm",
        adapter ? `only a fallback GPU adapter (${adapter.description})` : "no GPU adapter",
      );
    }
  } else {
    info = await startCpuLike(wanted, "requested");
  }
  current = info;
  if (!opts.quiet) console.error(`backend: ${info.backend} on ${info.device} (${info.reason})`);
  return info;
}

async function startCpuLike(name: "wasm" | "cpu", reason: string): Promise<BackendInfo> {
  if (name === "wasm") {
    try {
      if (await tf.setBackend("wasm")) {
        await tf.ready();
        return { backend: "wasm", device: cpuModel(), reason };
      }
    } catch (e) {
      reason += `; wasm failed: ${(e as Error).message}`;
    }
  }
  await tf.setBackend("cpu");
  await tf.ready();
  return { backend: "cpu", device: cpuModel(), reason };
}

/**
 * Every kernel tfjs-backend-webgpu dispatches creates WebGPU objects (a bind group; per submitted batch a
 * command encoder, a compute pass, a command buffer; per upload a staging buffer) whose native memory (wgpu
 * and the driver) is freed only when V8 collects their JavaScript wrappers, and those are freed only by a
 * full (mark-compact) collection. The wrappers are tiny, so a loop that allocates little JavaScript but
 * dispatches many small kernels (decoding: ~120 kernels per byte for a 2-layer model) never triggers one:
 * `generate --backend webgpu` grew by ~140 KB per byte on Mesa's lavapipe (192 MB over 1,365 bytes).
 *
 * `reclaimWebGpuGarbage()` is called once per unit of such work (a decoding step, a scoring pass): on the
 * webgpu backend it runs a full collection after at least `every` calls, and no sooner than 50 times the
 * last collection's duration (so collections cost at most ~2% of the time), keeping memory flat. A no-op
 * on other backends.
 */
export function reclaimWebGpuGarbage(every = 256): void {
  if (tf.getBackend() !== "webgpu") return;
  gc.calls++;
  const now = performance.now();
  if (gc.calls < every || now - gc.last < 50 * gc.ms) return;
  gc.run ??= fullCollector();
  if (!gc.run) return;
  gc.run();
  gc.last = performance.now();
  gc.ms = gc.last - now;
  gc.calls = 0;
}

const gc: { calls: number; last: number; ms: number; run?: (() => void) | null } = {
  calls: 0,
  last: 0,
  ms: 0,
};

/** V8's full collection: `gc` when the process runs with --expose-gc, else exposed through node:v8. */
function fullCollector(): (() => void) | null {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === "function") return exposed;
  try {
    v8.setFlagsFromString("--expose-gc");
    const fn = vm.runInNewContext("gc");
    return typeof fn === "function" ? fn : null;
  } catch {
    return null;
  }
}

/**
 * Destroys the GPU buffers tfjs-backend-webgpu keeps for reuse (its BufferManager pools every released
 * buffer by size and never frees one), returning the bytes freed; a no-op (0) on other backends. A pool
 * grows with every new shape a workload meets: the extrapolation of a subword Mamba at seven lengths left
 * enough pooled on an H100 (80 GB) that the byte Transformer scored next in the same process failed from
 * 2x on with "not enough memory left" (data/results/gpu-logs/large-2026-12-06b-call3). Buffers of live
 * tensors stay; the pool fills again as work asks. Call it between units of work of unrelated shapes.
 */
export function releasePooledGpuBuffers(): number {
  if (tf.getBackend() !== "webgpu") return 0;
  const pool = (tf.backend() as unknown as { bufferManager?: PooledBuffers }).bufferManager;
  if (!pool?.freeBuffers) return 0;
  let bytes = 0;
  for (const buffers of pool.freeBuffers.values()) {
    for (const b of buffers) {
      bytes += b.size;
      b.destroy();
    }
    // the keys stay: releaseBuffer pools nothing (it returns at once) while the map is empty
    buffers.length = 0;
  }
  pool.numFreeBuffers = 0;
  pool.numBytesAllocated -= bytes;
  return bytes;
}

/** The fields of tfjs-backend-webgpu's BufferManager (4.22) that releasePooledGpuBuffers touches. */
interface PooledBuffers {
  freeBuffers: Map<string, { size: number; destroy(): void }[]>;
  numFreeBuffers: number;
  numBytesAllocated: number;
}

export { tf };
