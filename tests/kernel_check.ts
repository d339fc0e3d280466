/**
 * Runs one engine op on every tested engine backend and compares it with the plain-JS twins (the
 * reference): the inputs written to fresh buffers, the op recorded and run, the named outputs read back
 * and compared by relative L2 error. Shared by the kernel tests (engine_kernels_test.ts,
 * engine_attention_test.ts).
 */
import assert from "node:assert/strict";
import { type Backend, GpuBackend, JsBackend, WasmBackend } from "../lib/engine/backend.ts";
import type { EngineOps, JsBuffer } from "../lib/kernels/js/ops.ts";
import { relL2 } from "./helpers.ts";
import { ENGINE_BACKENDS } from "./engine_helpers.ts";

type Data = Float32Array | Int32Array;
export type Case = {
  inputs: Record<string, Data>;
  /** buffers compared after the op (they may also be inputs: in-place ops, accumulation) */
  outputs: Record<string, number>;
  run: <B>(ops: EngineOps<B>, b: Record<string, B>) => void;
};

export const gpu = ENGINE_BACKENDS.includes("webgpu")
  ? await GpuBackend.create({ allowSoftware: true })
  : undefined;
export const js = new JsBackend();

async function runOn<B>(be: Backend<B>, c: Case): Promise<Record<string, Float32Array>> {
  const bufs: Record<string, B> = {};
  for (const [name, data] of Object.entries(c.inputs)) {
    bufs[name] = data instanceof Int32Array ? be.i32(data.length, name) : be.f32(data.length, name);
    be.write(bufs[name], data);
  }
  const p = be.record((ops) => c.run(ops, bufs));
  await be.submit([p]);
  const out: Record<string, Float32Array> = {};
  for (const name of Object.keys(c.inputs)) {
    if (!(c.inputs[name] instanceof Int32Array)) {
      out[name] = await be.read(bufs[name], 0, c.inputs[name].length);
    }
  }
  await be.finish();
  return out;
}

/**
 * Runs a case on the twins and (when tested) on WebGPU and on the WebAssembly kernels; returns the twins'
 * outputs. `twinLayout`: the case compares a buffer whose layout is the twins' and WebGPU's but not the
 * WebAssembly set's own (packBC's packed B, C), so the wasm backend sits it out.
 */
export async function check(
  what: string,
  c: Case,
  o: {
    twinLayout?: boolean;
    /** WebGPU runs the case once per entry, after calling it (kernel variants: attention's tiled and rows) */
    gpuVariants?: Record<string, () => void>;
  } = {},
): Promise<Record<string, Float32Array>> {
  const want = await runOn(js as Backend<JsBuffer>, c);
  for (const name of Object.keys(c.outputs)) {
    assert.ok(want[name].every(Number.isFinite), `${what}: twin ${name} not finite`);
  }
  const compare = (who: string, got: Record<string, Float32Array>) => {
    for (const [name, tol] of Object.entries(c.outputs)) {
      const err = relL2(got[name], want[name]);
      assert.ok(err <= tol, `${what} (${who}): ${name} rel err ${err} > ${tol}`);
    }
  };
  if (gpu) {
    for (const [variant, setup] of Object.entries(o.gpuVariants ?? { "": () => {} })) {
      setup();
      compare(variant ? `webgpu ${variant}` : "webgpu", await runOn(gpu, c));
    }
  }
  if (ENGINE_BACKENDS.includes("wasm") && !o.twinLayout) {
    const wasm = new WasmBackend(); // its buffers are held in the kernels' memory until destroyed
    try {
      compare("wasm", await runOn(wasm as Backend<JsBuffer>, c));
    } finally {
      wasm.destroy();
    }
  }
  return want;
}
