import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { autoBackend, initBackend, requestedBackend, webgpuAdapter } from "../lib/backend.ts";

Deno.test("backend: --backend and MAMBABYTE_BACKEND are read, unknown names rejected", () => {
  assert.equal(requestedBackend(["--backend", "cpu"]), "cpu");
  assert.equal(requestedBackend(["x", "--backend=wasm"]), "wasm");
  assert.equal(requestedBackend(["--backend", "auto"]), undefined);
  assert.throws(() => requestedBackend(["--backend", "cuda"]), /unknown backend "cuda".*webgpu, wasm, cpu/);
  const old = Deno.env.get("MAMBABYTE_BACKEND");
  Deno.env.set("MAMBABYTE_BACKEND", "cpu");
  try {
    assert.equal(requestedBackend([]), "cpu");
  } finally {
    if (old === undefined) Deno.env.delete("MAMBABYTE_BACKEND");
    else Deno.env.set("MAMBABYTE_BACKEND", old);
  }
});

Deno.test("backend: each backend starts and reports its device", async () => {
  for (const name of ["cpu", "wasm", "webgpu"] as const) {
    const info = await initBackend({ backend: name, quiet: true });
    assert.equal(info.backend, name);
    assert.equal(tf.getBackend(), name);
    assert.ok(info.device.length > 0);
    const x = tf.tensor([1, 2, 3]);
    assert.deepEqual([...await tf.square(x).data()], [1, 4, 9]);
    x.dispose();
  }
});

Deno.test("backend: automatic choice never picks a software (fallback) GPU adapter", async () => {
  assert.equal(autoBackend(undefined), "wasm");
  assert.equal(autoBackend({ fallback: true }), "wasm");
  assert.equal(autoBackend({ fallback: false }), "webgpu");
  // on this machine (CI: Mesa's llvmpipe, a fallback adapter) the automatic choice is wasm
  const adapter = await webgpuAdapter();
  if (adapter?.fallback) assert.equal(autoBackend(adapter), "wasm");
});
