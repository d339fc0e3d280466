/**
 * lib/bench/engine.ts runs as the lead runs it on the GPU machine (deno run -A --cached-only) and prints
 * one JSON line per shape with the fields the results need: here on the plan backend (no device), the
 * js twins, and WebGPU (Mesa's software adapter, --allow-software) when tested. No timing assertions.
 */
import assert from "node:assert/strict";
import { ENGINE_BACKENDS } from "./engine_helpers.ts";

const BENCH = new URL("../lib/bench/engine.ts", import.meta.url).pathname;

async function bench(args: string[]): Promise<Record<string, unknown>[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--cached-only", BENCH, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return text.trim().split("\n").map((l) => JSON.parse(l));
}

Deno.test("engine bench: plan backend reports dispatches per step and memory for each --shape", async () => {
  const lines = await bench(["--backend", "plan", "--shape", "512,8,16,2048", "--shape", "512,2,16,2048"]);
  assert.equal(lines.length, 2);
  const [big, small] = lines;
  assert.deepEqual(big.shape, { d_model: 512, n_layer: 8, batch: 16, length: 2048, vocab: 256 });
  assert.equal(big.error, undefined);
  // every layer records the same kernels: the count grows by a fixed number of dispatches per layer
  const perLayer = ((big.dispatches_per_step as number) - (small.dispatches_per_step as number)) / 6;
  assert.ok(Number.isInteger(perLayer) && perLayer > 20, `dispatches per layer ${perLayer}`);
  assert.ok((big.gpu_bytes as number) > 4e9, "activations of 8 layers at 16 x 2048");
});

for (const backend of ENGINE_BACKENDS) {
  Deno.test(`engine bench: ${backend} steps report bytes/s, ms per step (host and GPU) and a finite loss`, async () => {
    const [r] = await bench([
      "--backend",
      backend,
      "--allow-software",
      "--shape",
      "32,1,2,24",
      "--steps",
      "4",
      "--warmup",
      "1",
      "--readback-every",
      "2",
      ...(backend === "webgpu" ? ["--profile"] : []),
    ]);
    assert.equal(r.error, undefined, String(r.error));
    for (const k of ["ms_per_step", "host_ms_per_step", "bytes_per_s", "dispatches_per_step", "gpu_bytes"]) {
      assert.ok(typeof r[k] === "number" && (r[k] as number) > 0, `${k}: ${r[k]}`);
    }
    assert.ok(Number.isFinite(r.loss_first) && Number.isFinite(r.loss_last));
    if (backend === "webgpu") {
      // the software adapter offers timestamp-query: the GPU times are there (their values are not tested)
      assert.ok(typeof r.gpu_ms_per_step === "number", `gpu_ms_per_step ${r.gpu_ms_per_step}`);
      const kernels = r.kernel_ms as Record<string, { count: number }>;
      const counted = Object.values(kernels).reduce((s, k) => s + k.count, 0);
      assert.equal(counted, r.dispatches_per_step, "the profile times every dispatch of a step");
    }
  });
}
