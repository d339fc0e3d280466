/**
 * Host-side profile of the fused selective scan on the webgpu backend: where the time goes while a call
 * is QUEUED (not the GPU's time). Wraps, with performance.now accumulators (total ms, self ms, calls,
 * bytes), the WebGPU API methods tfjs-backend-webgpu calls (GPUDevice, GPUQueue, GPUCommandEncoder,
 * GPUComputePassEncoder, GPUBuffer), the webgpu backend's own methods (runWebGPUProgram, uploadToGPU,
 * submitQueue, disposeData, makeTensorInfo, ...; its buffer manager), the engine's runKernel (per kernel
 * name) and makeTensor (host arrays turned into tensors), and our kernels' JS functions (SelectiveScan,
 * SelectiveScanGrad and the gradient function). Then, per shape, the same forward and forward+backward
 * calls as lib/bench/gpu.ts: a warm-up of N calls, N calls queued back to back (the profiled part), one
 * read-back (profiled apart).
 *
 *   deno run -A lib/bench/gpu_host_profile.ts --backend webgpu [--shapes "8,1536,16,8192;1,1536,16,8192"]
 *                                             [--calls 10] [--out FILE.json]
 *
 * Times of asynchronous methods (mapAsync, onSubmittedWorkDone, createComputePipelineAsync, read) are
 * their synchronous part only. "ms" is inclusive (nested wrapped calls included: runKernel contains
 * kernelFunc contains createBindGroup ...), "self" excludes wrapped callees. `unwrapped_ms_per_call` is
 * the queueing time outside every wrapped call (engine bookkeeping, tape, tidy).
 */
import { initBackend, tf } from "../backend.ts";
import { scanBenchInputs, sync } from "./gpu_inputs.ts";
import { selectiveScan } from "../ssm/mod.ts";
import { SCAN_GRAD_KERNEL, SCAN_KERNEL } from "../kernels/tfjs/scan_attrs.ts";
import { scanKernelConfig } from "../kernels/webgpu/scan_wgsl.ts";
import { RESULTS_DIR } from "../paths.ts";
import { helpOrUnknown } from "../util/usage.ts";

const HELP = `deno run -A lib/bench/gpu_host_profile.ts --backend webgpu [options]
  (host-side profile of the fused scan on webgpu: where the time goes while calls are queued)
  --backend NAME   the backend (webgpu; default: the automatic choice)
  --shapes LIST    shapes B,D,N,L;... (default 8,1536,16,8192;1,1536,16,8192;16,512,16,2048)
  --calls N        calls queued back to back per shape (default 10)
  --out FILE       the JSON report (default data/results/bench/gpu_host_profile.json)`;

const args = Deno.args;
helpOrUnknown(args, HELP, "lib/bench/gpu_host_profile.ts");
const argValue = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const outFile = argValue("--out") ?? `${RESULTS_DIR}bench/gpu_host_profile.json`;
const calls = Number(argValue("--calls") ?? 10);
const shapes = (argValue("--shapes") ?? "8,1536,16,8192;1,1536,16,8192;16,512,16,2048").split(";").filter(
  Boolean,
)
  .map((s) => s.split(",").map(Number) as [number, number, number, number]);

// ---------------------------------------------------------------------------------------------------
// Accumulators

interface Stat {
  ms: number;
  self: number;
  calls: number;
  bytes: number;
}
let stats = new Map<string, Stat>();
/** Finer counts (createBuffer by usage, runKernel by kernel name, uploads by shape): calls and bytes. */
let detail = new Map<string, { calls: number; ms: number; bytes: number }>();
let enabled = false;
let topLevelMs = 0;
const stack: { child: number }[] = [];
const wrapped: string[] = [];
const skipped: string[] = [];

function stat(name: string): Stat {
  let s = stats.get(name);
  if (!s) stats.set(name, s = { ms: 0, self: 0, calls: 0, bytes: 0 });
  return s;
}
function addDetail(name: string, ms: number, bytes: number) {
  let d = detail.get(name);
  if (!d) detail.set(name, d = { calls: 0, ms: 0, bytes: 0 });
  d.calls++;
  d.ms += ms;
  d.bytes += bytes;
}
function reset() {
  stats = new Map();
  detail = new Map();
  topLevelMs = 0;
}

type Info = (self: any, args: any[], result: any) => { bytes?: number; sub?: string } | undefined;

/** Replaces obj[method] with a timed pass-through; skipped (and listed) where it does not exist. */
function wrap(
  obj: any,
  method: string,
  label: string,
  info?: Info,
  before?: (self: any, args: any[]) => unknown,
) {
  const orig = obj?.[method];
  if (typeof orig !== "function") {
    skipped.push(label);
    return;
  }
  try {
    obj[method] = function (this: any, ...a: any[]) {
      if (!enabled) return orig.apply(this, a);
      const pre = before?.(this, a);
      const frame = { child: 0 };
      stack.push(frame);
      const t0 = performance.now();
      let result: any;
      try {
        result = orig.apply(this, a);
        return result;
      } finally {
        const ms = performance.now() - t0;
        stack.pop();
        const parent = stack[stack.length - 1];
        if (parent) parent.child += ms;
        else topLevelMs += ms;
        const s = stat(label);
        s.ms += ms;
        s.self += ms - frame.child;
        s.calls++;
        let extra: { bytes?: number; sub?: string } | undefined;
        try {
          extra = info?.(this, a, pre ?? result);
        } catch { /* informational only */ }
        if (extra?.bytes) s.bytes += extra.bytes;
        if (extra?.sub !== undefined) addDetail(`${label}[${extra.sub}]`, ms, extra.bytes ?? 0);
      }
    };
    wrapped.push(label);
  } catch {
    skipped.push(`${label} (not writable)`);
  }
}

const USAGE: [number, string][] = [
  [0x0001, "MAP_READ"],
  [0x0002, "MAP_WRITE"],
  [0x0004, "COPY_SRC"],
  [0x0008, "COPY_DST"],
  [0x0010, "INDEX"],
  [0x0020, "VERTEX"],
  [0x0040, "UNIFORM"],
  [0x0080, "STORAGE"],
  [0x0100, "INDIRECT"],
  [0x0200, "QUERY_RESOLVE"],
];
const usageName = (u: number) => USAGE.filter(([bit]) => u & bit).map(([, n]) => n).join("|");
const byteLength = (x: any) => x?.byteLength ?? (x?.length ?? 0) * 4;

// ---------------------------------------------------------------------------------------------------
// 1. The WebGPU API (prototypes: wrapped before the backend starts)

const g = globalThis as any;
const proto = (cls: string) => g[cls]?.prototype;
for (
  const m of [
    "createBuffer",
    "createBindGroup",
    "createComputePipeline",
    "createComputePipelineAsync",
    "createCommandEncoder",
    "createShaderModule",
    "createQuerySet",
    "createBindGroupLayout",
    "createPipelineLayout",
  ]
) {
  wrap(
    proto("GPUDevice"),
    m,
    `GPUDevice.${m}`,
    m === "createBuffer"
      ? (_s, a) => ({
        bytes: a[0]?.size ?? 0,
        sub: `${usageName(a[0]?.usage ?? 0)}${a[0]?.mappedAtCreation ? ",mappedAtCreation" : ""}`,
      })
      : m === "createBindGroup"
      ? (_s, a) => ({ sub: `${a[0]?.entries?.length ?? 0} entries` })
      : undefined,
  );
}
wrap(
  proto("GPUQueue"),
  "submit",
  "GPUQueue.submit",
  (_s, a) => ({ sub: `${a[0]?.length ?? 0} command buffers` }),
);
wrap(proto("GPUQueue"), "writeBuffer", "GPUQueue.writeBuffer", (_s, a) => {
  const [, , data, , size] = a;
  const per = ArrayBuffer.isView(data) ? (data as any).BYTES_PER_ELEMENT ?? 1 : 1;
  const bytes = size !== undefined ? size * per : byteLength(data);
  return { bytes, sub: bytes <= 1024 ? "<=1KiB (uniforms)" : ">1KiB" };
});
wrap(proto("GPUQueue"), "onSubmittedWorkDone", "GPUQueue.onSubmittedWorkDone (sync part)");
for (const m of ["beginComputePass", "copyBufferToBuffer", "finish", "resolveQuerySet", "clearBuffer"]) {
  wrap(
    proto("GPUCommandEncoder"),
    m,
    `GPUCommandEncoder.${m}`,
    m === "copyBufferToBuffer" ? (_s, a) => ({ bytes: a[4] ?? 0 }) : undefined,
  );
}
for (const m of ["setPipeline", "setBindGroup", "dispatchWorkgroups", "end"]) {
  wrap(proto("GPUComputePassEncoder"), m, `GPUComputePassEncoder.${m}`);
}
wrap(proto("GPUBuffer"), "mapAsync", "GPUBuffer.mapAsync (sync part)");
wrap(
  proto("GPUBuffer"),
  "getMappedRange",
  "GPUBuffer.getMappedRange",
  (_s, _a, r) => ({ bytes: byteLength(r) }),
);
wrap(proto("GPUBuffer"), "unmap", "GPUBuffer.unmap", (s) => ({ bytes: s?.size ?? 0 }));
wrap(proto("GPUBuffer"), "destroy", "GPUBuffer.destroy", (s) => ({ bytes: s?.size ?? 0 }));

// ---------------------------------------------------------------------------------------------------
// 2. The backend (an instance: wrapped after it starts), the engine, our kernels

const info = await initBackend({ backend: "webgpu", allowFallbackGpu: true });
if (tf.getBackend() !== "webgpu") {
  throw new Error(`gpu_host_profile needs the webgpu backend, got ${tf.getBackend()}`);
}
const be = tf.backend() as any;

// uploadToGPU: bytes of host values copied (0 when the tensor only gets a GPU buffer)
const hostBytes = (s: any, a: any[]) => {
  const d = s.tensorMap?.get(a[0]);
  return d && d.resource == null && d.values
    ? { bytes: byteLength(d.values), shape: `[${d.shape}]` }
    : undefined;
};
wrap(
  be,
  "uploadToGPU",
  "backend.uploadToGPU",
  (_s, _a, pre) =>
    pre && typeof pre === "object" && "shape" in pre
      ? { bytes: pre.bytes, sub: `host values ${pre.shape}` }
      : { sub: "no host values (allocate or already on GPU)" },
  hostBytes,
);
wrap(
  be,
  "makeTensorInfo",
  "backend.makeTensorInfo",
  (_s, a) => a[2] ? { bytes: byteLength(a[2]), sub: `with values [${a[0]}]` } : { sub: "no values" },
);
for (
  const m of [
    "runWebGPUProgram",
    "recordAndSubmit",
    "makeUniforms",
    "submitQueue",
    "disposeData",
    "releaseResource",
    "ensureCommandEncoderReady",
    "endComputePassEncoder",
    "write",
    "incRef",
    "read",
    "getBufferData",
    "readSync",
    "copyBuffer",
    "getQueryTime",
  ]
) {
  wrap(
    be,
    m,
    `backend.${m}`,
    m === "runWebGPUProgram" ? (_s, a) => ({ sub: a[0]?.constructor?.name ?? "?" }) : undefined,
  );
}
wrap(be.bufferManager, "acquireBuffer", "bufferManager.acquireBuffer", (_s, a) => ({
  bytes: a[0],
  sub: `${usageName(a[1])}${a[2] ? ",mapped" : ""}${a[3] === false ? ",no-reuse" : ""}`,
}));
wrap(be.bufferManager, "releaseBuffer", "bufferManager.releaseBuffer");

const engine = tf.engine() as any;
wrap(engine, "runKernel", "engine.runKernel", (_s, a) => ({ sub: String(a[0]) }));
wrap(engine, "makeTensor", "engine.makeTensor (host array -> tensor)", (_s, a) => ({
  bytes: byteLength(a[0]),
  sub: `[${a[1]}] ${a[2] ?? ""}`,
}));

for (const name of [SCAN_KERNEL, SCAN_GRAD_KERNEL]) {
  const k = tf.getKernel(name, "webgpu") as any;
  if (k) wrap(k, "kernelFunc", `kernel ${name} (webgpu kernelFunc)`);
  else skipped.push(`kernel ${name}`);
}
const grad = tf.getGradient(SCAN_KERNEL) as any;
if (grad) wrap(grad, "gradFunc", `gradient of ${SCAN_KERNEL} (gradFunc)`);
else skipped.push(`gradient of ${SCAN_KERNEL}`);

console.log(`backend: webgpu on ${info.device}`);
console.log(`wrapped (${wrapped.length}): ${wrapped.join(", ")}`);
if (skipped.length) console.log(`skipped (missing in this runtime): ${skipped.join(", ")}`);

// ---------------------------------------------------------------------------------------------------
// 3. The calls of lib/bench/gpu.ts (inputs and sync from gpu_inputs.ts)

function snapshot(n: number) {
  const per = (x: number) => x / n;
  const methods = [...stats.entries()].sort((a, b) => b[1].ms - a[1].ms).map(([name, s]) => ({
    name,
    ms_per_call: per(s.ms),
    self_ms_per_call: per(s.self),
    calls_per_call: per(s.calls),
    ...(s.bytes ? { bytes_per_call: per(s.bytes) } : {}),
  }));
  const details = [...detail.entries()].sort((a, b) => b[1].ms - a[1].ms).map(([name, d]) => ({
    name,
    ms_per_call: per(d.ms),
    calls_per_call: per(d.calls),
    ...(d.bytes ? { bytes_per_call: per(d.bytes) } : {}),
  }));
  return { methods, details, wrapped_top_level_ms_per_call: per(topLevelMs) };
}

const bufferManagerState = () => {
  const bm = be.bufferManager;
  return {
    used: bm?.getNumUsedBuffers?.(),
    free: bm?.getNumFreeBuffers?.(),
    bytes_used: bm?.numBytesUsed,
    bytes_allocated: bm?.numBytesAllocated,
  };
};

/** Warm-up, then `n` calls queued back to back (profiled), then one read-back (profiled apart). */
async function profilePhase(fn: () => tf.Tensor, n: number) {
  const queue = () => {
    const t0 = performance.now();
    let last: tf.Tensor | undefined;
    for (let i = 0; i < n; i++) {
      last?.dispose();
      last = fn();
    }
    return { last: last!, ms: performance.now() - t0 };
  };
  // warm-up (fills tfjs's buffer pool for n calls in flight, compiles the pipelines), uninstrumented run
  for (let rep = 0; rep < 2; rep++) {
    const w = queue();
    await sync(w.last);
    w.last.dispose();
  }
  const plain = queue();
  await sync(plain.last);
  plain.last.dispose();
  // the profiled run
  const memoryBefore = tf.memory() as any;
  const buffersBefore = bufferManagerState();
  reset();
  enabled = true;
  const run = queue();
  enabled = false;
  const enqueue = snapshot(n);
  const enqueueStats = stats;
  reset();
  enabled = true;
  const t0 = performance.now();
  await sync(run.last);
  const syncMs = performance.now() - t0;
  enabled = false;
  const readback = snapshot(1);
  run.last.dispose();
  const memoryAfter = tf.memory() as any;
  const count = (name: string) => (enqueueStats.get(name)?.calls ?? 0) / n;
  return {
    calls: n,
    enqueue_ms_per_call: run.ms / n,
    enqueue_ms_per_call_uninstrumented: plain.ms / n,
    unwrapped_ms_per_call: (run.ms - enqueue.wrapped_top_level_ms_per_call * n) / n,
    counts_per_call: {
      createBuffer: count("GPUDevice.createBuffer"),
      createBindGroup: count("GPUDevice.createBindGroup"),
      createComputePipeline: count("GPUDevice.createComputePipeline"),
      createShaderModule: count("GPUDevice.createShaderModule"),
      writeBuffer: count("GPUQueue.writeBuffer"),
      submit: count("GPUQueue.submit"),
      dispatchWorkgroups: count("GPUComputePassEncoder.dispatchWorkgroups"),
      beginComputePass: count("GPUCommandEncoder.beginComputePass"),
      copyBufferToBuffer: count("GPUCommandEncoder.copyBufferToBuffer"),
      uploadToGPU: count("backend.uploadToGPU"),
      runKernel: count("engine.runKernel"),
      makeTensor_host: count("engine.makeTensor (host array -> tensor)"),
    },
    bytes_per_call: {
      writeBuffer: (enqueueStats.get("GPUQueue.writeBuffer")?.bytes ?? 0) / n,
      uploadToGPU_host_values: (enqueueStats.get("backend.uploadToGPU")?.bytes ?? 0) / n,
      makeTensor_host: (enqueueStats.get("engine.makeTensor (host array -> tensor)")?.bytes ?? 0) / n,
      createBuffer: (enqueueStats.get("GPUDevice.createBuffer")?.bytes ?? 0) / n,
      copyBufferToBuffer: (enqueueStats.get("GPUCommandEncoder.copyBufferToBuffer")?.bytes ?? 0) / n,
    },
    enqueue,
    readback: { ms: syncMs, ...readback },
    memory_before: {
      numTensors: memoryBefore.numTensors,
      numBytes: memoryBefore.numBytes,
      numDataBuffers: memoryBefore.numDataBuffers,
    },
    memory_after: {
      numTensors: memoryAfter.numTensors,
      numBytes: memoryAfter.numBytes,
      numDataBuffers: memoryAfter.numDataBuffers,
    },
    buffer_manager_before: buffersBefore,
    buffer_manager_after: bufferManagerState(),
  };
}

function print(label: string, r: Awaited<ReturnType<typeof profilePhase>>) {
  const f = (x: number) => x.toFixed(3).padStart(9);
  console.log(
    `\n== ${label}: queueing ${r.enqueue_ms_per_call.toFixed(3)} ms/call (uninstrumented ` +
      `${r.enqueue_ms_per_call_uninstrumented.toFixed(3)}; outside wrapped calls ${
        r.unwrapped_ms_per_call.toFixed(3)
      }); ` +
      `read-back ${
        r.readback.ms.toFixed(2)
      } ms; numTensors ${r.memory_before.numTensors} -> ${r.memory_after.numTensors}; ` +
      `buffers used/free ${r.buffer_manager_before.used}/${r.buffer_manager_before.free} -> ` +
      `${r.buffer_manager_after.used}/${r.buffer_manager_after.free}`,
  );
  console.log(`   counts per call: ${JSON.stringify(r.counts_per_call)}`);
  console.log(`   bytes per call:  ${JSON.stringify(r.bytes_per_call)}`);
  console.log(
    `   ${"ms/call".padStart(9)} ${"self".padStart(9)} ${"calls".padStart(8)} ${
      "bytes".padStart(12)
    }  method`,
  );
  for (const m of r.enqueue.methods) {
    console.log(
      `   ${f(m.ms_per_call)} ${f(m.self_ms_per_call)} ${m.calls_per_call.toFixed(1).padStart(8)} ` +
        `${(m.bytes_per_call ? Math.round(m.bytes_per_call).toString() : "").padStart(12)}  ${m.name}`,
    );
  }
  console.log(`   details (by usage / kernel / shape):`);
  for (const d of r.enqueue.details) {
    console.log(
      `   ${f(d.ms_per_call)} ${"".padStart(9)} ${d.calls_per_call.toFixed(1).padStart(8)} ` +
        `${(d.bytes_per_call ? Math.round(d.bytes_per_call).toString() : "").padStart(12)}  ${d.name}`,
    );
  }
}

const results: unknown[] = [];
for (const [B, D, N, L] of shapes) {
  const { u, delta, A, Bm, Cm, Dv, z, bias, gy } = scanBenchInputs(B, D, N, L);
  await sync(gy);
  const opts = { deltaSoftplus: true, impl: "fused" as const };
  const forward = () => selectiveScan(u, delta, A, Bm, Cm, Dv, z, bias, opts).y;
  const fwdBwd = () => {
    const grads = tf.grads((
      uu: tf.Tensor,
      dd: tf.Tensor,
      aa: tf.Tensor,
      bb: tf.Tensor,
      cc: tf.Tensor,
      zz: tf.Tensor,
    ) => selectiveScan(uu, dd, aa, bb, cc, Dv, zz, bias, opts).y)([u, delta, A, Bm, Cm, z], gy);
    tf.dispose(grads.slice(1));
    return grads[0];
  };
  const fwd = await profilePhase(forward, calls);
  print(`fwd (${B}, ${D}, ${N}, ${L})`, fwd);
  const both = await profilePhase(fwdBwd, calls);
  print(`fwd+bwd (${B}, ${D}, ${N}, ${L})`, both);
  results.push({ shape: { B, D, N, L }, fwd, fwdbwd: both });
  tf.dispose([u, delta, A, Bm, Cm, Dv, z, bias, gy]);
}

const record = {
  bench: "gpu_host_profile",
  device: info.device,
  date: new Date().toISOString(),
  deno: Deno.version.deno,
  kernel_config: scanKernelConfig(),
  calls,
  wrapped,
  skipped,
  results,
};
await Deno.mkdir(outFile.slice(0, outFile.lastIndexOf("/")) || ".", { recursive: true });
await Deno.writeTextFile(outFile, JSON.stringify(record, null, 1) + "\n");
console.log(`\nwritten: ${outFile}`);
