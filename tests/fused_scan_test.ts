/**
 * The fused selective-scan kernels: against the op-built scans on random shapes up to 5,000 steps (with
 * initial state); every gradient entry of the plain-JS twin (float64 inside) and of every implementation
 * on every backend against float64 finite differences of the scan's definition.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { availableScanImpls, selectiveScan } from "../lib/ssm/mod.ts";
import { Rng } from "../lib/util/rng.ts";
import { scanBackward } from "../lib/kernels/wasm/scan_reference.ts";
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

// ---------------------------------------------------------------------------------------------------
// Gradients against float64 finite differences, entry by entry

/** Scan inputs as float32 values (what every implementation reads), kept as float64 for the differences. */
type Inputs64 = Record<(typeof TWIN_NAMES)[number], Float64Array>;
const TWIN_NAMES = ["u", "delta", "A", "B", "C", "D", "z", "deltaBias", "initialState"] as const;

/**
 * L = sum(y gy) + sum(last gs) in float64, written from the definition (lib/ssm/types.ts), independent of
 * every implementation: h_t = exp(dt_t A) h_{t-1} + dt_t B_t u_t, y_t = (<h_t, C_t> + D u_t) silu(z_t),
 * dt_t = softplus(delta_t + bias) or delta_t + bias.
 */
function loss64(x: Inputs64, [b, d, n, l]: number[], softplus: boolean, gy: Float64Array, gs: Float64Array) {
  let L = 0;
  const h = new Float64Array(n);
  for (let bi = 0; bi < b; bi++) {
    for (let c = 0; c < d; c++) {
      for (let s = 0; s < n; s++) h[s] = x.initialState[(bi * d + c) * n + s];
      for (let t = 0; t < l; t++) {
        const i = (bi * d + c) * l + t;
        const raw = x.delta[i] + x.deltaBias[c];
        const dt = softplus ? Math.log1p(Math.exp(raw)) : raw;
        let acc = 0;
        for (let s = 0; s < n; s++) {
          h[s] = Math.exp(dt * x.A[c * n + s]) * h[s] + dt * x.B[(bi * n + s) * l + t] * x.u[i];
          acc += h[s] * x.C[(bi * n + s) * l + t];
        }
        const z = x.z[i];
        L += (acc + x.D[c] * x.u[i]) * (z / (1 + Math.exp(-z))) * gy[i];
      }
      for (let s = 0; s < n; s++) L += h[s] * gs[(bi * d + c) * n + s];
    }
  }
  return L;
}

/**
 * dL/dx for every entry of every input: central differences in float64, Richardson-extrapolated
 * ((4 D(h/2) - D(h)) / 3, error O(h^4)) at h = 4e-3 max(1, |x|): truncation and rounding both stay below
 * 1e-9 here, where a plain central difference at h ~ 1e-6 loses ~1e-8 to rounding.
 */
function finiteDifferences(
  x: Inputs64,
  dims: number[],
  softplus: boolean,
  gy: Float64Array,
  gs: Float64Array,
) {
  const out = {} as Record<(typeof TWIN_NAMES)[number], Float64Array>;
  for (const name of TWIN_NAMES) {
    const arr = x[name];
    out[name] = new Float64Array(arr.length);
    for (let k = 0; k < arr.length; k++) {
      const v = arr[k], h = 4e-3 * Math.max(1, Math.abs(v));
      const central = (e: number) => {
        arr[k] = v + e;
        const up = loss64(x, dims, softplus, gy, gs);
        arr[k] = v - e;
        const down = loss64(x, dims, softplus, gy, gs);
        arr[k] = v;
        return (up - down) / (2 * e);
      };
      out[name][k] = (4 * central(h / 2) - central(h)) / 3;
    }
  }
  return out;
}

/** A small case: float32 inputs in Mamba's ranges, float32 gy and gs; without softplus, positive steps. */
function smallCase(seed: number, softplus: boolean) {
  const rng = new Rng(seed);
  const dims = [2, 3, 4, 9];
  const [b, d, n, l] = dims;
  const x32 = {
    u: rng.normalArray(b * d * l),
    delta: softplus ? rng.uniformArray(b * d * l, -4, 1) : rng.uniformArray(b * d * l, 0.01, 1),
    A: rng.uniformArray(d * n, -8, -0.1),
    B: rng.normalArray(b * n * l),
    C: rng.normalArray(b * n * l),
    D: rng.normalArray(d),
    z: rng.normalArray(b * d * l),
    deltaBias: softplus ? rng.uniformArray(d, -3, 0) : rng.uniformArray(d, 0, 0.5),
    initialState: rng.normalArray(b * d * n),
  };
  const gy = rng.normalArray(b * d * l), gs = rng.normalArray(b * d * n);
  const x64 = Object.fromEntries(Object.entries(x32).map(([k, v]) => [k, Float64Array.from(v)])) as Inputs64;
  const fd = finiteDifferences(x64, dims, softplus, Float64Array.from(gy), Float64Array.from(gs));
  return { dims, x32, gy, gs, fd };
}

/** Entry by entry: |got - fd| <= rel |fd| + abs; returns the worst relative error over entries above abs. */
function compareEntries(
  got: ArrayLike<number>,
  fd: Float64Array,
  rel: number,
  abs: number,
  what: string,
): number {
  let worst = 0;
  for (let k = 0; k < fd.length; k++) {
    const err = Math.abs(got[k] - fd[k]);
    assert.ok(err <= rel * Math.abs(fd[k]) + abs, `${what}[${k}]: ${got[k]} vs finite differences ${fd[k]}`);
    if (Math.abs(fd[k]) > abs) worst = Math.max(worst, err / Math.abs(fd[k]));
  }
  return worst;
}

Deno.test("the scan's plain-JS twin (float64 inside): every gradient entry, h0 and deltaBias included, equals float64 finite differences to 1e-6", () => {
  for (const softplus of [true, false]) {
    const { dims, x32, gy, gs, fd } = smallCase(softplus ? 3 : 4, softplus);
    const [b, d, n, l] = dims;
    const g = scanBackward(x32, { batch: b, dInner: d, dState: n, length: l }, softplus, gy, gs);
    const worst: Record<string, number> = {};
    for (const name of TWIN_NAMES) {
      // the twin works in float64 and rounds its results to float32 (6e-8 relative)
      worst[name] = compareEntries(g[name], fd[name], 1e-6, 1e-9, `softplus ${softplus}: d${name}`);
    }
    console.log(`twin, softplus ${softplus}: worst relative error per input ${JSON.stringify(worst)}`);
    // the check catches a wrong sign on the smallest gradient entry (the float32 check with step 1e-2 and
    // tolerance 2e-2 max(1, |fd|) that this replaces accepted any wrong sign below 0.01)
    let smallest: [(typeof TWIN_NAMES)[number], number] = ["u", 0];
    for (const name of TWIN_NAMES) {
      g[name].forEach((v, k) => {
        if (Math.abs(v) > 1e-7 && Math.abs(v) < Math.abs(g[smallest[0]][smallest[1]])) smallest = [name, k];
      });
    }
    const [name, k] = smallest;
    const flipped = g[name].slice();
    flipped[k] = -flipped[k];
    console.log(`  flipped: d${name}[${k}] = ${g[name][k]} -> ${flipped[k]}: caught`);
    assert.ok(Math.abs(flipped[k]) < 1e-3, `the smallest entry is small: ${flipped[k]}`);
    assert.ok(Math.abs(flipped[k] - fd[name][k]) <= 2e-2 * Math.max(1, Math.abs(fd[name][k])), "old check");
    assert.throws(
      () => compareEntries(flipped, fd[name], 1e-6, 1e-9, `d${name} with a flipped sign`),
      new RegExp(`d${name} with a flipped sign\\[${k}\\]`),
    );
  }
});

for (const backend of TEST_BACKENDS) {
  Deno.test(`every scan implementation's gradient, entry by entry, equals float64 finite differences to float32 precision (${backend})`, async () => {
    await useBackend(backend);
    for (const softplus of [true, false]) {
      const { dims, x32, gy, gs, fd } = smallCase(softplus ? 5 : 6, softplus);
      const [b, d, n, l] = dims;
      const shapes: Record<(typeof TWIN_NAMES)[number], number[]> = {
        u: [b, d, l],
        delta: [b, d, l],
        A: [d, n],
        B: [b, n, l],
        C: [b, n, l],
        D: [d],
        z: [b, d, l],
        deltaBias: [d],
        initialState: [b, d, n],
      };
      const inputs = TWIN_NAMES.map((k) => tf.tensor(x32[k], shapes[k]));
      const gyT = tf.tensor(gy, [b, d, l]), gsT = tf.tensor(gs, [b, d, n]);
      const worst: Record<string, number> = {};
      for (const impl of availableScanImpls()) {
        const f = (...t: tf.Tensor[]) => {
          const r = selectiveScan(t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], {
            deltaSoftplus: softplus,
            initialState: t[8],
            returnLastState: true,
            impl,
            chunkSize: 4,
          });
          return tf.add(tf.sum(tf.mul(r.y, gyT)), tf.sum(tf.mul(r.lastState!, gsT))) as tf.Scalar;
        };
        const { value, grads } = tf.valueAndGrads(f)(inputs);
        for (const [i, name] of TWIN_NAMES.entries()) {
          // float32 arithmetic: 1e-4 of the entry, plus 1e-6 of the input's largest gradient entry (measured:
          // within 3.2e-5 (|fd| + 1e-3 max |fd|)); a sign error on any entry above 5e-7 max |fd| fails
          const scale = fd[name].reduce((m, v) => Math.max(m, Math.abs(v)), 0);
          const g = (await grads[i].data()) as Float32Array;
          worst[impl] = Math.max(
            worst[impl] ?? 0,
            ...Array.from(g, (v, k) => Math.abs(v - fd[name][k]) / (Math.abs(fd[name][k]) + 1e-3 * scale)),
          );
          compareEntries(
            g,
            fd[name],
            1e-4,
            1e-6 * scale,
            `${impl}, softplus ${softplus}: d${name}`,
          );
        }
        tf.dispose([value, ...grads]);
      }
      console.log(
        `${backend}, softplus ${softplus}: worst |g - fd| / (|fd| + 1e-3 max|fd|) ${JSON.stringify(worst)}`,
      );
      tf.dispose([...inputs, gyT, gsT]);
    }
  });
}
