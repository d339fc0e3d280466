/**
 * How long the host waits to learn that the GPU finished, through Deno's WebGPU: a 16-byte copy submitted,
 * then (a) `mapAsync` of its staging buffer, (b) `queue.onSubmittedWorkDone()`, (c) the same while
 * submitting empty command lists in a loop (a lead for shortening the wait: in some WebGPU implementations
 * a submission advances the pending callbacks). Deno's `mapAsync` polls the device, then sleeps 10 ms
 * before it looks again (ext/webgpu/buffer.rs), so every read-back costs at least that; the decoding engine
 * is built around it (lib/engine/decode.ts, lib/engine/speculative.ts). One JSON line; with --out FILE also
 * appended there with provenance.
 *
 *   deno run -A lib/bench/readback.ts [--allow-software] [--reps 20] [--out FILE]
 */
import { appendBenchLine } from "../results/store.ts";
import { helpOrUnknown } from "../util/usage.ts";

const USAGE = `deno run -A lib/bench/readback.ts [--allow-software] [--reps N] [--out FILE]
  (milliseconds from a submission to the host knowing it finished, three ways)`;
helpOrUnknown(Deno.args, USAGE, "lib/bench/readback.ts");
const arg = (name: string) => Deno.args[Deno.args.indexOf(name) + 1];
const reps = Deno.args.includes("--reps") ? Number(arg("--reps")) : 20;
const out = Deno.args.includes("--out") ? arg("--out") : undefined;

const adapter = await navigator.gpu.requestAdapter();
if (!adapter) throw new Error("no WebGPU adapter");
// deno-lint-ignore no-explicit-any
const info = (adapter as any).info ?? {};
const fallback = Boolean((adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter);
if (fallback && !Deno.args.includes("--allow-software")) {
  throw new Error("a software adapter: pass --allow-software");
}
const device = await adapter.requestDevice();
const staging = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
const src = device.createBuffer({ size: 16, usage: GPUBufferUsage.COPY_SRC });
const copy = () => {
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(src, 0, staging, 0, 16);
  device.queue.submit([enc.finish()]);
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const timed = async (wait: () => Promise<unknown>) => {
  const ms: number[] = [];
  for (let i = 0; i < reps + 1; i++) {
    copy();
    const t0 = performance.now();
    await wait();
    if (i > 0) ms.push(performance.now() - t0); // the first is a warm-up
  }
  return {
    median_ms: Math.round(median(ms) * 1000) / 1000,
    min_ms: Math.round(Math.min(...ms) * 1000) / 1000,
  };
};
const mapAsync = await timed(async () => {
  await staging.mapAsync(GPUMapMode.READ);
  staging.unmap();
});
const workDone = await timed(() => device.queue.onSubmittedWorkDone());
let submits = 0;
const workDoneWhileSubmitting = await timed(async () => {
  let done = false;
  device.queue.onSubmittedWorkDone().then(() => (done = true));
  while (!done) {
    device.queue.submit([]);
    submits++;
    await new Promise((r) => setTimeout(r, 0));
  }
});
const line = {
  bench: "readback",
  device: String(info.description || info.device || "unknown") + (fallback ? " (software)" : ""),
  reps,
  map_async: mapAsync,
  on_submitted_work_done: workDone,
  work_done_with_empty_submits: { ...workDoneWhileSubmitting, empty_submits_per_wait: submits / (reps + 1) },
};
console.log(JSON.stringify(line));
if (out) await appendBenchLine(out, line, "webgpu", line.device);
device.destroy();
