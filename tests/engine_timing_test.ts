/**
 * The engine's GPU step timing (timestamp queries) resolves only queries written since the last resolve.
 * Vulkan's query copy waits for every query it copies, so resolving one never written hangs the device:
 * it did on the H200 (a flush after fewer steps than timestamp slots), while Mesa's software adapter
 * returned at once. So this test watches the real encoder calls rather than waiting for a hang: every
 * query passed to resolveQuerySet must have been written by a pass since that query was last resolved.
 * It also checks that each step's stats carry a GPU time (a non-negative number).
 */
import assert from "node:assert/strict";
import { parseMambaConfig } from "../lib/models/mamba_config.ts";
import { initParameters } from "../lib/models/mamba.ts";
import { MambaEngine } from "../lib/engine/mamba.ts";
import { ENGINE_BACKENDS } from "./engine_helpers.ts";

Deno.test({
  name: "engine (webgpu): timestamp queries resolved only after they were written",
  ignore: !ENGINE_BACKENDS.includes("webgpu"),
  async fn() {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter?.features.has("timestamp-query")) {
      throw new Error("this WebGPU adapter has no timestamp-query: the test cannot check anything");
    }
    const written = new Set<number>();
    const bad: string[] = [];
    let resolved = 0;
    const proto = GPUCommandEncoder.prototype;
    const begin = proto.beginComputePass, resolve = proto.resolveQuerySet;
    proto.beginComputePass = function (desc?: GPUComputePassDescriptor) {
      const t = desc?.timestampWrites;
      if (t?.beginningOfPassWriteIndex !== undefined) written.add(t.beginningOfPassWriteIndex);
      if (t?.endOfPassWriteIndex !== undefined) written.add(t.endOfPassWriteIndex);
      return begin.call(this, desc);
    };
    proto.resolveQuerySet = function (
      q: GPUQuerySet,
      first: number,
      count: number,
      dst: GPUBuffer,
      off: number,
    ) {
      for (let i = first; i < first + count; i++) {
        if (!written.has(i)) bad.push(`query ${i} resolved, not written since its last resolve`);
        written.delete(i);
      }
      resolved += count;
      return resolve.call(this, q, first, count, dst, off);
    };
    try {
      const config = parseMambaConfig({ d_model: 16, n_layer: 1, vocab_size: 256 }, "timing test");
      const engine = await MambaEngine.create({
        config,
        params: initParameters(config, 0),
        batch: 1,
        length: 32,
        backend: "webgpu",
        allowSoftwareGpu: true,
        timing: true,
        readbackEvery: 4,
      });
      try {
        const ids = Int32Array.from({ length: 33 }, (_, i) => (i * 31) % 256);
        const stats = [];
        // 6 steps: one full read-back cycle of 4, then a flush after 2 (slots 2 and 3 not written)
        for (let s = 0; s < 6; s++) stats.push((await engine.step(ids, 1e-3)).stats);
        await engine.flush();
        for (const st of await Promise.all(stats)) {
          assert.ok(Number.isFinite(st.gpuMs) && st.gpuMs! >= 0, `step ${st.step}: gpuMs ${st.gpuMs}`);
        }
      } finally {
        engine.destroy();
      }
    } finally {
      proto.beginComputePass = begin;
      proto.resolveQuerySet = resolve;
    }
    assert.deepEqual(bad, []);
    assert.equal(resolved, 12, "each of the 6 steps' two timestamps resolved once");
  },
});
