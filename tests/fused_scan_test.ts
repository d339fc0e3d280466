/**
 * The fused selective-scan kernels: against the op-built scans on random shapes up to 5,000 steps (with
 * initial state), against finite differences, and through the memory they do not use.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { availableScanImpls, selectiveScan } from "../lib/ssm/mod.ts";
import { Rng } from "../lib/util/rng.ts";
import { randomScanInputs, relL2T, TEST_BACKENDS, useBackend } from "./helpers.ts";
import {
  type ScanKernelConfig,
  scanKernelConfig,
  setScanKernelConfig,
} from "../lib/kernels/webgpu/scan_wgsl.ts";

type In = ReturnType<typeof randomScanInputs>;
const NAMES = ["u", "delta", "A", "B", "C", "D", "z", "deltaBias", "h0"] as const;

/** Value and gradients of sum(y * gy) + sum(last * gs) with respect to all nine inputs. */
function lossAndGrads(
  x: In,
  impl: "fused" | "chunked" | "sequential",
  gy: tf.Tensor,
  gs: tf.Tensor,
  softplus = true,
) {
  const f = (
    u: tf.Tensor,
    delta: tf.Tensor,
    A: tf.Tensor,
    B: tf.Tensor,
    C: tf.Tensor,
    D: tf.Tensor,
    z: tf.Tensor,
    bias: tf.Tensor,
    h0: tf.Tensor,
  ) => {
    const r = selectiveScan(u, delta, A, B, C, D, z, bias, {
      deltaSoftplus: softplus,
      initialState: h0,
      returnLastState: true,
      impl,
      chunkSize: 32,
    });
    return tf.add(tf.sum(tf.mul(r.y, gy)), tf.sum(tf.mul(r.lastState!, gs))) as tf.Scalar;
  };
  return tf.valueAndGrads(f as (...t: tf.Tensor[]) => tf.Scalar)(NAMES.map((k) => x[k]));
}

for (const backend of TEST_BACKENDS) {
  Deno.test(`fused scan is registered and the default on ${backend}`, async () => {
    await useBackend(backend);
    assert.ok(availableScanImpls().includes("fused"));
  });

  Deno.test(`fused scan matches the chunked scan on random shapes up to 5,000 steps (${backend})`, async () => {
    await useBackend(backend);
    const rng = new Rng(99);
    const shapes: [number, number, number, number][] = backend === "webgpu"
      ? [[1, 3, 2, 1], [2, 5, 3, 7], [1, 4, 16, 300], [1, 2, 4, 5000]]
      : [[1, 3, 2, 1], [2, 5, 3, 7], [3, 4, 16, 129], [1, 8, 16, 1000], [1, 2, 4, 5000]];
    for (const [b, d, n, l] of shapes) {
      const x = randomScanInputs(rng, b, d, n, l);
      const gy = tf.tensor(rng.normalArray(b * d * l), [b, d, l]);
      const gs = tf.tensor(rng.normalArray(b * d * n), [b, d, n]);
      const ref = lossAndGrads(x, "chunked", gy, gs);
      const got = lossAndGrads(x, "fused", gy, gs);
      const what = `(b=${b}, d=${d}, n=${n}, l=${l})`;
      assert.ok(await relL2T(got.value, ref.value) < 1e-4, `${what}: value`);
      for (const [i, name] of NAMES.entries()) {
        const err = await relL2T(got.grads[i], ref.grads[i]);
        assert.ok(err < 1e-3, `${what}: grad ${name} rel err ${err}`);
      }
      tf.dispose([ref.value, ...ref.grads, got.value, ...got.grads, gy, gs, ...Object.values(x)]);
    }
  });

  Deno.test(`fused scan without optional inputs and without softplus (${backend})`, async () => {
    await useBackend(backend);
    const x = randomScanInputs(new Rng(5), 2, 3, 4, 17);
    const delta = tf.sigmoid(x.delta); // positive steps, no softplus
    const run = (impl: "sequential" | "fused") =>
      selectiveScan(x.u, delta, x.A, x.B, x.C, undefined, undefined, undefined, {
        impl,
        returnLastState: true,
      });
    const s = run("sequential"), f = run("fused");
    assert.ok(await relL2T(f.y, s.y) < 1e-5);
    assert.ok(await relL2T(f.lastState!, s.lastState!) < 1e-5);
  });
}

if (TEST_BACKENDS.includes("webgpu")) {
  Deno.test("every WGSL kernel variant matches the chunked scan (webgpu: tiled/direct forward, split/channel gradients, vec4/scalar runs, blocks, chunks, dead lanes)", async () => {
    await useBackend("webgpu");
    const rng = new Rng(17);
    const variants: Partial<ScanKernelConfig>[] = [
      { fwdKernel: "tiled", bwdKernel: "channel", fwdThreads: 64, bwdThreads: 32 },
      { fwdKernel: "direct", bwdKernel: "split", vec4: false, bwdSub: 2, bwdChunk: 16, fwdChunk: 16 },
      {
        fwdKernel: "direct",
        bwdKernel: "split",
        vec4: true,
        bwdSub: 8,
        bwdChunk: 8,
        bwdThreads: 16,
        fwdChunk: 64,
        fwdThreads: 32,
      },
      { fwdKernel: "direct", bwdKernel: "channel", vec4: true, bwdSub: 4, bwdChunk: 8, bwdThreads: 64 },
    ];
    const saved = scanKernelConfig();
    try {
      // 37 channels: the last workgroup has idle lanes; 300 steps read as vec4s, 301 as scalars; 3 states pad to a vec4
      for (const [b, d, n, l] of [[2, 37, 16, 300], [1, 37, 3, 301]]) {
        const x = randomScanInputs(rng, b, d, n, l);
        const gy = tf.tensor(rng.normalArray(b * d * l), [b, d, l]);
        const gs = tf.tensor(rng.normalArray(b * d * n), [b, d, n]);
        const ref = lossAndGrads(x, "chunked", gy, gs);
        for (const v of variants) {
          setScanKernelConfig({ ...saved, ...v });
          const got = lossAndGrads(x, "fused", gy, gs);
          const what = `${JSON.stringify(v)} (b=${b}, d=${d}, n=${n}, l=${l})`;
          assert.ok(await relL2T(got.value, ref.value) < 1e-4, `${what}: value`);
          for (const [i, name] of NAMES.entries()) {
            const err = await relL2T(got.grads[i], ref.grads[i]);
            assert.ok(err < 1e-3, `${what}: grad ${name} rel err ${err}`);
          }
          tf.dispose([got.value, ...got.grads]);
        }
        tf.dispose([ref.value, ...ref.grads, gy, gs, ...Object.values(x)]);
      }
    } finally {
      setScanKernelConfig(saved);
    }
  });
}

Deno.test("fused scan gradients agree with central finite differences on a small case (cpu)", async () => {
  await useBackend("cpu");
  const rng = new Rng(3);
  const x = randomScanInputs(rng, 1, 2, 3, 6);
  const gy = tf.tensor(rng.normalArray(12), [1, 2, 6]);
  const gs = tf.tensor(rng.normalArray(6), [1, 2, 3]);
  const { grads } = lossAndGrads(x, "fused", gy, gs);
  const eps = 1e-2;
  for (const [i, name] of NAMES.entries()) {
    const base = await x[name].data() as Float32Array;
    const g = await grads[i].data();
    for (const k of [0, base.length - 1]) {
      const probe = (delta: number) => {
        const arr = Float32Array.from(base);
        arr[k] += delta;
        const moved = { ...x, [name]: tf.tensor(arr, x[name].shape) };
        return lossAndGrads(moved, "fused", gy, gs).value;
      };
      const fd = ((await probe(eps).data())[0] - (await probe(-eps).data())[0]) / (2 * eps);
      assert.ok(
        Math.abs(fd - g[k]) <= 2e-2 * Math.max(1, Math.abs(fd)),
        `${name}[${k}]: fd ${fd} vs grad ${g[k]}`,
      );
    }
  }
});
