import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  autoBackend,
  initBackend,
  releasePooledGpuBuffers,
  requestedBackend,
  webgpuAdapter,
} from "../lib/backend.ts";
import { firstMessage, summarizeErrors } from "../lib/util/messages.ts";

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

Deno.test("backend: releasePooledGpuBuffers destroys the buffers TF.js pooled on webgpu; live tensors and the pool go on", async () => {
  await initBackend({ backend: "cpu", quiet: true });
  assert.equal(releasePooledGpuBuffers(), 0); // other backends: nothing to free
  await initBackend({ backend: "webgpu", quiet: true });
  const be = tf.backend() as unknown as {
    device: GPUDevice;
    bufferManager: {
      getNumFreeBuffers(): number;
      numBytesAllocated: number;
      freeBuffers: Map<string, GPUBuffer[]>;
    };
  };
  const pool = be.bufferManager;
  releasePooledGpuBuffers(); // from an empty pool
  // two tensors alive through the release, their data on the GPU: outputs of kernels over 2,048 values
  // (smaller ones run on the CPU) that are never read (a read moves the values to the CPU)
  const kept = tf.tidy(() => tf.add(tf.range(0, 2048), 1));
  const dropped = tf.tidy(() => tf.square(tf.range(0, 2048)));
  const pooled = async () => {
    const t = tf.tidy(() => tf.square(tf.range(0, 4096)));
    await t.data();
    t.dispose(); // its buffers (and the range's) go to the pool
  };
  await pooled(); // also submits the queue: kept's and dropped's buffers are no longer the queue's
  assert.ok(pool.getNumFreeBuffers() > 0, "buffers pooled");
  const allocated = pool.numBytesAllocated;
  const buffers = [...pool.freeBuffers.values()].flat();
  const freed = releasePooledGpuBuffers();
  // destroyed, not only forgotten: writing to one is a validation error
  be.device.pushErrorScope("validation");
  be.device.queue.writeBuffer(buffers[0], 0, new Float32Array(1));
  assert.ok(await be.device.popErrorScope(), "a released buffer is destroyed");
  assert.ok(freed >= 4096 * 4, `freed ${freed} bytes`);
  assert.equal(pool.getNumFreeBuffers(), 0);
  assert.equal(pool.numBytesAllocated, allocated - freed);
  // one disposed right after goes to the pool (an emptied map, not emptied lists, would drop it: tfjs's
  // releaseBuffer returns at once while the map holds no key)
  dropped.dispose();
  assert.equal(pool.getNumFreeBuffers(), 1, "a buffer released after the release is pooled");
  // the other reads back; later work pools again
  const values = await kept.data();
  assert.deepEqual([values[0], values[1], values[2047]], [1, 2, 2048]);
  kept.dispose();
  await pooled();
  assert.ok(pool.getNumFreeBuffers() > 0, "buffers pooled after the release");
  releasePooledGpuBuffers();
});

Deno.test("backend: WebGPU errors are reported once per message with their count", () => {
  assert.equal(
    summarizeErrors([
      "not enough memory left",
      "Buffer 'a' is invalid",
      "not enough memory left",
      "x",
      "not enough memory left",
    ]),
    "not enough memory left (x3); Buffer 'a' is invalid; x",
  );
  // a table's note groups failures by their first message, from a full list or a summarized one
  assert.equal(firstMessage("WebGPU errors: oom; oom; Buffer 'a' is invalid; oom"), "oom");
  assert.equal(firstMessage("WebGPU errors: oom (x3); Buffer 'a' is invalid (x2)"), "oom");
  assert.equal(firstMessage("validation error occurred"), "validation error occurred");
});
