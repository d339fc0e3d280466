/**
 * The WebAssembly kernels of the cpu and wasm backends (lib/ssm/kernels: scan.wat, matmul.wat) against
 * their plain-JS reference twins: the selective scan (wasm/scan.ts vs wasm/scan_reference.ts), the matrix multiply
 * (wasm/matmul.ts), the causal conv + SiLU (wasm/conv.ts), their vector math, their TF.js ops against the
 * op-built versions, the worker threads, and that the committed bytes are built from the .wat sources.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { compileAll } from "../lib/kernels/wasm/build.ts";
import * as committed from "../lib/kernels/wasm/bytes.ts";
import * as conv from "../lib/kernels/wasm/conv.ts";
import { fusedCausalConvSilu } from "../lib/kernels/tfjs/conv_op.ts";
import { matMul, matMulReference } from "../lib/kernels/wasm/matmul.ts";
import { fastMatMul } from "../lib/kernels/tfjs/matmul_op.ts";
import { getGemmConfig, setGemmConfig } from "../lib/kernels/webgpu/gemm.ts";
import { fusedSelectiveScan, fusedSelectiveScanChannelsLast } from "../lib/kernels/tfjs/scan_op.ts";
import * as ref from "../lib/kernels/wasm/scan_reference.ts";
import * as fast from "../lib/kernels/wasm/scan.ts";
import {
  ensureMemory,
  getPool,
  HEAP,
  setThreads,
  setWasmKernels,
  threadCount,
  wasmKernelsEnabled,
  workerCount,
} from "../lib/kernels/wasm/pool.ts";
import { selectiveScan } from "../lib/ssm/mod.ts";
import { Rng } from "../lib/util/rng.ts";
import { relL2, relL2T, TEST_BACKENDS, useBackend, withDeadline } from "./helpers.ts";
import { causalConv, silu } from "../lib/nn/layers.ts";

const CPU_BACKENDS = TEST_BACKENDS.filter((b) => b === "cpu" || b === "wasm");

/** Runs f with 1 thread, then with 2 (workers), restoring the default after. */
function withThreads(f: (threads: number) => void): void {
  try {
    for (const threads of [1, 2]) {
      setThreads(threads);
      f(threads);
    }
  } finally {
    setThreads(undefined);
  }
}

Deno.test("wasm/bytes.ts holds exactly what wasm/build.ts compiles from the .wat sources", async () => {
  const want = await compileAll();
  assert.deepEqual(Object.keys(want).sort(), Object.keys(committed).sort());
  for (const [name, b64] of Object.entries(want)) {
    assert.ok(
      committed[name as keyof typeof committed] === b64,
      `${name} is stale: run deno run -A lib/kernels/wasm/build.ts`,
    );
  }
});

Deno.test("vector exp, 2^x, softplus and sigmoid: within a few ulp of Math on dense grids; edge values", () => {
  const p = getPool();
  const n = 1 << 18;
  const mem = ensureMemory(p, HEAP + 8 * n);
  const src = HEAP >> 2, dst = (HEAP >> 2) + n;
  const ulp = (x: number) => {
    const f = new Float32Array([Math.abs(x)]);
    new Int32Array(f.buffer)[0]++;
    return f[0] - Math.abs(x);
  };
  const softplus = (x: number) => x > 20 ? x : Math.log1p(Math.exp(x));
  const cases: [string, number, number, number, (x: number) => number, number][] = [
    ["exp", 0, -86.5, 88.7, Math.exp, 2],
    ["2^x", 1, -124.5, 127.99, (x) => 2 ** x, 2],
    ["softplus", 2, -80, 80, softplus, 4],
    ["sigmoid", 3, -80, 80, (x) => 1 / (1 + Math.exp(-x)), 3],
  ];
  for (const [name, f, lo, hi, exact, maxUlp] of cases) {
    for (let i = 0; i < n; i++) mem[src + i] = lo + (hi - lo) * i / (n - 1);
    p.scan.map(f, src * 4, dst * 4, n);
    let worst = 0, at = 0;
    for (let i = 0; i < n; i++) {
      const want = Math.fround(exact(mem[src + i]));
      const err = Math.abs(mem[dst + i] - want) / ulp(want);
      if (!(err <= worst)) [worst, at] = [err, mem[src + i]];
    }
    assert.ok(worst <= maxUlp, `${name}: ${worst} ulp at x = ${at} (allowed ${maxUlp})`);
  }
  const edge = [-Infinity, Infinity, NaN, -1000, 1000, 0, -90, 90];
  mem.set(edge, src);
  const run = (f: number) => {
    p.scan.map(f, src * 4, dst * 4, edge.length);
    return Array.from(mem.subarray(dst, dst + edge.length));
  };
  assert.deepEqual(run(0), [0, Infinity, NaN, 0, Infinity, 1, 0, Infinity]);
  assert.deepEqual(run(2), [0, Infinity, NaN, 0, 1000, Math.fround(Math.LN2), 0, 90]);
  assert.deepEqual(run(3), [0, 1, NaN, 0, 1, 0.5, 0, 1]);
});

// ---------------------------------------------------------------------------------------------------
// The selective scan: WebAssembly vs the JS reference

function scanInputs(
  rng: Rng,
  dims: ref.ScanDims,
  opts: { optional: boolean; softplus: boolean },
): ref.ScanArrays {
  const { batch: b, dInner: d, dState: n, length: l } = dims;
  return {
    u: rng.normalArray(b * d * l),
    // without softplus the steps must be positive (else the recurrence blows up)
    delta: opts.softplus ? rng.uniformArray(b * d * l, -4, 1) : rng.uniformArray(b * d * l, 0.01, 1),
    A: rng.uniformArray(d * n, -8, -0.1),
    B: rng.normalArray(b * n * l),
    C: rng.normalArray(b * n * l),
    D: opts.optional ? rng.normalArray(d) : undefined,
    z: opts.optional ? rng.normalArray(b * d * l) : undefined,
    deltaBias: opts.optional ? rng.uniformArray(d, -3, 0) : undefined,
    initialState: opts.optional ? rng.normalArray(b * d * n) : undefined,
  };
}

Deno.test("WebAssembly scan matches its JS twin: random shapes, lengths 1 to 5,000, initial states, both layouts, 1 and 2 threads", () => {
  const rng = new Rng(7);
  const shapes: [number, number, number, number][] = [
    [1, 1, 1, 1],
    [1, 3, 2, 1],
    [2, 5, 3, 7],
    [1, 4, 5, 2],
    [3, 4, 16, 129],
    [2, 64, 16, 257],
    [2, 33, 5, 66],
    [1, 8, 16, 1000],
    [1, 2, 4, 5000],
    [1, 6, 17, 3],
  ];
  withThreads((threads) => {
    for (const [batch, dInner, dState, length] of shapes) {
      for (const channelsLast of [false, true]) {
        for (const [optional, softplus] of [[true, true], [false, false]]) {
          const dims = { batch, dInner, dState, length, channelsLast };
          const what =
            `(${batch}, ${dInner}, ${dState}, ${length}) channelsLast=${channelsLast} optional=${optional} ` +
            `softplus=${softplus} threads=${threads}`;
          const x = scanInputs(rng, dims, { optional, softplus });
          const y1 = new Float32Array(batch * dInner * length),
            s1 = new Float32Array(batch * dInner * dState);
          const y2 = y1.slice(), s2 = s1.slice();
          ref.scanForward(x, dims, softplus, y1, s1);
          fast.scanForward(x, dims, softplus, y2, s2);
          assert.ok(relL2(y2, y1) < 1e-5, `${what}: y ${relL2(y2, y1)}`);
          assert.ok(relL2(s2, s1) < 1e-5, `${what}: last state ${relL2(s2, s1)}`);
          const gy = rng.normalArray(y1.length), gLast = optional ? rng.normalArray(s1.length) : undefined;
          const g1 = ref.scanBackward(x, dims, softplus, gy, gLast);
          const g2 = fast.scanBackward(x, dims, softplus, gy, gLast);
          for (const k of Object.keys(g1) as (keyof ref.ScanGradients)[]) {
            assert.equal(g2[k].length, g1[k].length, `${what}: d${k} length`);
            const err = relL2(g2[k], g1[k]);
            assert.ok(err < 1e-4, `${what}: d${k} rel err ${err}`);
          }
        }
      }
    }
  });
});

Deno.test("WebAssembly scan on Mamba-sized inputs: 2 threads give 1 thread's results", () => {
  const rng = new Rng(8);
  const dims = { batch: 2, dInner: 128, dState: 16, length: 512 };
  const x = scanInputs(rng, dims, { optional: true, softplus: true });
  const gy = rng.normalArray(2 * 128 * 512);
  const results: ref.ScanGradients[] = [];
  withThreads((threads) => {
    results.push(fast.scanBackward(x, dims, true, gy, undefined));
    if (threads === 2) assert.ok(workerCount() >= 1, "no worker was started");
  });
  for (const k of Object.keys(results[0]) as (keyof ref.ScanGradients)[]) {
    assert.ok(relL2(results[1][k], results[0][k]) < 1e-6, `d${k}`);
  }
});

// ---------------------------------------------------------------------------------------------------
// Matrix multiply and conv: WebAssembly vs JS references

Deno.test("WebAssembly matMul matches the reference on every transpose combination and edge sizes, 1 and 2 threads", () => {
  const rng = new Rng(9);
  const shapes = [[1, 1, 1], [5, 3, 7], [13, 17, 9], [6, 8, 8], [64, 33, 48], [100, 256, 20], [7, 1000, 16], [
    301,
    64,
    129,
  ]];
  withThreads((threads) => {
    for (const [M, K, N] of shapes) {
      for (const transposeA of [false, true]) {
        for (const transposeB of [false, true]) {
          const a = rng.normalArray(M * K), b = rng.normalArray(K * N);
          const want = new Float32Array(M * N), got = new Float32Array(M * N).fill(NaN);
          const dims = { M, K, N, transposeA, transposeB };
          matMulReference(a, b, dims, want);
          matMul(a, b, dims, got);
          const err = relL2(got, want);
          assert.ok(
            err < 1e-6,
            `M=${M} K=${K} N=${N} tA=${transposeA} tB=${transposeB} threads=${threads}: ${err}`,
          );
        }
      }
    }
  });
  const c = new Float32Array(6).fill(NaN);
  matMul(
    new Float32Array(0),
    new Float32Array(0),
    { M: 2, K: 0, N: 3, transposeA: false, transposeB: false },
    c,
  );
  assert.deepEqual(Array.from(c), [0, 0, 0, 0, 0, 0]);
});

Deno.test("WebAssembly causal conv + SiLU matches its reference, forward and backward, 1 and 2 threads", () => {
  const rng = new Rng(10);
  const shapes = [[1, 1, 4, 4], [2, 3, 8, 4], [3, 17, 12, 4], [2, 50, 64, 3], [1, 5, 4, 1], [2, 300, 32, 4], [
    1,
    9,
    8,
    6,
  ]];
  withThreads((threads) => {
    for (const [batch, length, channels, k] of shapes) {
      const dims = { batch, length, channels, k };
      const n = batch * length * channels;
      const x = rng.normalArray(n), w = rng.normalArray(channels * k), bias = rng.normalArray(channels);
      const dy = rng.normalArray(n);
      const want = new Float32Array(n), got = new Float32Array(n);
      conv.convSiluReference(x, w, bias, dims, want);
      conv.convSilu(x, w, bias, dims, got);
      const what = `(${batch}, ${length}, ${channels}, k=${k}) threads=${threads}`;
      assert.ok(relL2(got, want) < 1e-6, `${what}: y ${relL2(got, want)}`);
      const g1 = conv.convSiluBackwardReference(x, w, bias, dims, dy);
      const g2 = conv.convSiluBackward(x, w, bias, dims, dy);
      for (const key of ["x", "w", "bias"] as const) {
        assert.ok(relL2(g2[key], g1[key]) < 1e-5, `${what}: d${key} ${relL2(g2[key], g1[key])}`);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// The TF.js ops against the op-built computations they replace

/** Random operands of op(a) op(b) (M, K, N), weights w (M, N), and loss(mm) = sum(mm(a, b) * w). */
function matMulCase(rng: Rng, M: number, K: number, N: number, transposeA: boolean, transposeB: boolean) {
  const a = tf.tensor(rng.normalArray(M * K), transposeA ? [K, M] : [M, K]);
  const b = tf.tensor(rng.normalArray(K * N), transposeB ? [N, K] : [K, N]);
  const w = tf.tensor(rng.normalArray(M * N), [M, N]);
  const loss = (mm: typeof tf.matMul) => (x: tf.Tensor, y: tf.Tensor) =>
    tf.sum(tf.mul(mm(x, y, transposeA, transposeB), w));
  return { a, b, w, loss };
}

if (TEST_BACKENDS.includes("webgpu")) {
  Deno.test("fastMatMul on webgpu: the WGSL GEMM's values and gradients equal tf.matMul's (edges, both tile sizes, every transpose)", async () => {
    await useBackend("webgpu");
    const defaultGemm = getGemmConfig();
    const rng = new Rng(13);
    // (M, K, N): 128-row and 64-row tiles, sizes that are not multiples of the tiles or of the k step 8;
    // every implementation (the WGSL GEMM at both k steps, k split or not; tfjs's kernel with transposes made first)
    for (
      const [M, K, N, config] of [
        [600, 33, 520, { impl: "wgsl", bk: 8, minGroups: 1 }], // 128 x 128 tiles wherever a side allows
        [130, 70, 601, { impl: "wgsl", bk: 16, minGroups: 1 }],
        [517, 17, 480, { impl: "wgsl", bk: 8, minGroups: 512 }], // 64 x 64 tiles
        [70, 3500, 100, { impl: "wgsl", bk: 16, splitK: true }], // k split in 3 uneven slices, then summed
        [70, 3500, 100, { impl: "wgsl", bk: 16, splitK: true, splitMinK: 256 }], // 13 slices of 272 (the last shorter)
        [70, 3500, 100, { impl: "wgsl", bk: 16, splitK: false, splitMinK: 1024 }],
        [130, 70, 601, { impl: "tfjs-b" }],
        [600, 33, 520, { impl: "tfjs-ab" }],
      ] as const
    ) {
      setGemmConfig(config);
      for (const [transposeA, transposeB] of [[false, false], [false, true], [true, false], [true, true]]) {
        const { a, b, w, loss } = matMulCase(rng, M, K, N, transposeA, transposeB);
        const want = tf.valueAndGrads(loss(tf.matMul))([a, b]);
        let got: { value: tf.Tensor; grads: tf.Tensor[] } | undefined;
        const prof = await tf.profile(() => {
          const r = tf.valueAndGrads(loss(fastMatMul as typeof tf.matMul))([a, b]);
          got = r;
          return [r.value, ...r.grads];
        });
        const what = `(${M}, ${K}, ${N}) ${
          JSON.stringify(config)
        } transposeA=${transposeA} transposeB=${transposeB}`;
        // the forward and both gradient products ran the GEMM, not tf.matMul (BatchMatMul)
        assert.equal(
          prof.kernels.filter((k) => k.name === "WasmMatMul").length,
          3,
          `${what}: ${prof.kernelNames}`,
        );
        assert.ok(!prof.kernelNames.includes("BatchMatMul"), what);
        const c = fastMatMul(a, b, transposeA, transposeB), cw = tf.matMul(a, b, transposeA, transposeB);
        assert.ok(await relL2T(c, cw) < 1e-5, `${what}: product`); // a split k sums in another order
        // the loss is a sum with cancellation: its error is relative to the sum of the terms' magnitudes
        const scale = tf.sum(tf.abs(tf.mul(cw, w)));
        const [gv, wv, sv] = [await got!.value.data(), await want.value.data(), await scale.data()];
        assert.ok(Math.abs(gv[0] - wv[0]) <= 1e-6 * sv[0], `${what}: value ${gv[0]} vs ${wv[0]}`);
        for (const i of [0, 1]) {
          assert.ok(await relL2T(got!.grads[i], want.grads[i]) < 1e-5, `${what}: grad ${i}`);
        }
        tf.dispose([a, b, w, c, cw, scale, want.value, ...want.grads, got!.value, ...got!.grads]);
      }
    }
    setGemmConfig(defaultGemm);
  });
}

for (const backend of TEST_BACKENDS) {
  Deno.test(`fastMatMul of an operand cast from int32 (a one-hot, as the embedding's gradient) is exact (${backend})`, async () => {
    // tfjs-webgpu's cast int32 -> float32 keeps the integer buffer; a kernel binding it as f32 read integer
    // bits (1 as 1.4e-45): the embedding's gradient onehot(ids)^T dy came out ~0. Reference: host sums.
    await useBackend(backend);
    const rng = new Rng(21);
    const [n, V, d] = [600, 256, 64]; // large enough for the WGSL GEMM
    const ids = Int32Array.from({ length: n }, () => rng.int(V));
    const dy = rng.normalArray(n * d);
    const onehot = tf.oneHot(tf.tensor(ids, [n], "int32"), V).toFloat();
    const dyT = tf.tensor(dy, [n, d]);
    const got = fastMatMul(onehot, dyT, true, false);
    const want = new Float32Array(V * d);
    const acc = new Float64Array(V * d);
    for (let t = 0; t < n; t++) for (let j = 0; j < d; j++) acc[ids[t] * d + j] += dy[t * d + j];
    want.set(acc);
    const err = relL2((await got.data()) as Float32Array, want);
    assert.ok(err < 1e-6, `${backend}: rel. L2 error ${err}`);
    tf.dispose([onehot, dyT, got]);
  });
}

for (const backend of CPU_BACKENDS) {
  Deno.test(`fastMatMul: values and gradients equal tf.matMul's (${backend})`, async () => {
    await useBackend(backend);
    const rng = new Rng(11);
    for (const [transposeA, transposeB] of [[false, false], [false, true], [true, false], [true, true]]) {
      const [M, K, N] = [37, 19, 23];
      const { a, b, w, loss } = matMulCase(rng, M, K, N, transposeA, transposeB);
      const want = tf.valueAndGrads(loss(tf.matMul))([a, b]);
      const got = tf.valueAndGrads(loss(fastMatMul as typeof tf.matMul))([a, b]);
      const what = `transposeA=${transposeA} transposeB=${transposeB}`;
      assert.ok(await relL2T(got.value, want.value) < 1e-5, `${what}: value`);
      for (const i of [0, 1]) {
        assert.ok(await relL2T(got.grads[i], want.grads[i]) < 1e-5, `${what}: grad ${i}`);
      }
      tf.dispose([a, b, w, want.value, ...want.grads, got.value, ...got.grads]);
    }
  });

  Deno.test(`fused causal conv + SiLU: values and gradients equal the op-built silu(causalConv) (${backend})`, async () => {
    await useBackend(backend);
    const rng = new Rng(12);
    for (
      const [b, l, e, k, withBias] of [[2, 9, 8, 4, true], [1, 3, 6, 4, false], [2, 40, 16, 3, true]] as const
    ) {
      const x = tf.tensor(rng.normalArray(b * l * e), [b, l, e]);
      const w = tf.tensor(rng.normalArray(e * k), [e, 1, k]);
      const bias = tf.tensor(rng.normalArray(e), [e]);
      const gy = tf.tensor(rng.normalArray(b * l * e), [b, l, e]);
      const loss = (f: (x: tf.Tensor, w: tf.Tensor, bias?: tf.Tensor) => tf.Tensor) => (...t: tf.Tensor[]) =>
        tf.sum(tf.mul(f(t[0], t[1], t[2]), gy));
      const inputs = withBias ? [x, w, bias] : [x, w];
      const want = tf.valueAndGrads(loss((x, w, bb) => silu(causalConv(x, w, bb))))(inputs);
      const got = tf.valueAndGrads(loss(fusedCausalConvSilu))(inputs);
      const what = `(${b}, ${l}, ${e}, k=${k}, bias=${withBias})`;
      assert.ok(await relL2T(got.value, want.value) < 1e-5, `${what}: value`);
      for (const i of withBias ? [0, 1, 2] : [0, 1]) {
        const err = await relL2T(got.grads[i], want.grads[i]);
        assert.ok(err < 1e-5, `${what}: grad ${i} rel err ${err}`);
      }
      tf.dispose([x, w, bias, gy, want.value, ...want.grads, got.value, ...got.grads]);
    }
  });

  Deno.test(`channels-last fused scan: values and gradients equal the (b, d, l) fused scan's (${backend})`, async () => {
    await useBackend(backend);
    const rng = new Rng(13);
    const [b, d, n, l] = [2, 12, 5, 33];
    const t = (shape: number[], data: Float32Array) => tf.tensor(data, shape);
    const u = t([b, l, d], rng.normalArray(b * l * d)), delta = t([b, l, d], rng.normalArray(b * l * d));
    const A = t([d, n], rng.uniformArray(d * n, -8, -0.1)), B = t([b, l, n], rng.normalArray(b * l * n));
    const C = t([b, l, n], rng.normalArray(b * l * n)),
      D = t([d], rng.normalArray(d)),
      z = t([b, l, d], rng.normalArray(b * l * d));
    const bias = t([d], rng.uniformArray(d, -3, 0)), h0 = t([b, d, n], rng.normalArray(b * d * n));
    const gy = t([b, l, d], rng.normalArray(b * l * d)), gs = t([b, d, n], rng.normalArray(b * d * n));
    const T = (x: tf.Tensor) => tf.transpose(x, [0, 2, 1]);
    const opts = (h: tf.Tensor) => ({ deltaSoftplus: true, initialState: h, returnLastState: true });
    const inputs = [u, delta, A, B, C, D, z, bias, h0];
    const want = tf.valueAndGrads((...x: tf.Tensor[]) => {
      const r = fusedSelectiveScan({
        u: T(x[0]),
        delta: T(x[1]),
        A: x[2],
        B: T(x[3]),
        C: T(x[4]),
        D: x[5],
        z: T(x[6]),
        deltaBias: x[7],
      }, opts(x[8]));
      return tf.add(tf.sum(tf.mul(T(r.y), gy)), tf.sum(tf.mul(r.lastState!, gs))) as tf.Scalar;
    })(inputs);
    const got = tf.valueAndGrads((...x: tf.Tensor[]) => {
      const r = fusedSelectiveScanChannelsLast({
        u: x[0],
        delta: x[1],
        A: x[2],
        B: x[3],
        C: x[4],
        D: x[5],
        z: x[6],
        deltaBias: x[7],
      }, opts(x[8]));
      return tf.add(tf.sum(tf.mul(r.y, gy)), tf.sum(tf.mul(r.lastState!, gs))) as tf.Scalar;
    })(inputs);
    assert.ok(await relL2T(got.value, want.value) < 1e-6, "value");
    for (const [i, name] of ["u", "delta", "A", "B", "C", "D", "z", "bias", "h0"].entries()) {
      const err = await relL2T(got.grads[i], want.grads[i]);
      assert.ok(err < 1e-5, `grad ${name} rel err ${err}`);
    }
    assert.throws(
      () => fusedSelectiveScanChannelsLast({ u, delta, A, B: T(B), C }, {}),
      /expected u, delta, z \(b, l, d\)/,
    );
    tf.dispose([...inputs, gy, gs, want.value, ...want.grads, got.value, ...got.grads]);
  });

  Deno.test(`with the WebAssembly kernels switched off, the JS scan and tf.matMul give the same results (${backend})`, async () => {
    await useBackend(backend);
    const rng = new Rng(14);
    const [b, d, n, l] = [1, 8, 4, 50];
    const u = tf.tensor(rng.normalArray(b * d * l), [b, d, l]),
      delta = tf.tensor(rng.normalArray(b * d * l), [b, d, l]);
    const A = tf.tensor(rng.uniformArray(d * n, -4, -0.5), [d, n]);
    const B = tf.tensor(rng.normalArray(b * n * l), [b, n, l]),
      C = tf.tensor(rng.normalArray(b * n * l), [b, n, l]);
    const run = () => {
      const { y } = selectiveScan(u, delta, A, B, C, undefined, undefined, undefined, {
        deltaSoftplus: true,
        impl: "fused",
      });
      return [y, fastMatMul(tf.reshape(y, [d, l]), tf.reshape(y, [d, l]), false, true)];
    };
    assert.ok(wasmKernelsEnabled());
    const on = run();
    try {
      setWasmKernels(false);
      assert.ok(!wasmKernelsEnabled());
      const off = run();
      for (const i of [0, 1]) assert.ok(await relL2T(off[i], on[i]) < 1e-5, `output ${i}`);
      tf.dispose(off);
    } finally {
      setWasmKernels(undefined);
    }
    tf.dispose([u, delta, A, B, C, ...on]);
  });
}

// ---------------------------------------------------------------------------------------------------
// Threads and processes

Deno.test("MAMBABYTE_THREADS: sets the thread count; a bad value is an error naming it", async () => {
  const script = `import { threadCount } from "${
    new URL("../lib/kernels/wasm/pool.ts", import.meta.url).href
  }";
    console.log(threadCount());`;
  const run = (value: string) =>
    new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", script],
      env: { MAMBABYTE_THREADS: value, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
  const three = await run("3");
  assert.equal(new TextDecoder().decode(three.stdout).trim(), "3");
  const bad = await run("two");
  assert.notEqual(bad.code, 0);
  assert.match(
    new TextDecoder().decode(bad.stderr),
    /MAMBABYTE_THREADS must be a positive integer, got "two"/,
  );
  assert.ok(threadCount() >= 1);
});

Deno.test("a process that used worker threads exits by itself as soon as its work is done", async () => {
  const script = `import { setThreads, workerCount } from "${
    new URL("../lib/kernels/wasm/pool.ts", import.meta.url).href
  }";
    import { matMul } from "${new URL("../lib/kernels/wasm/matmul.ts", import.meta.url).href}";
    setThreads(2);
    const n = 256, a = new Float32Array(n * n).fill(1), c = new Float32Array(n * n);
    matMul(a, a, { M: n, K: n, N: n, transposeA: false, transposeB: false }, c);
    console.log(workerCount(), c[0]);`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // the event is the exit; a process kept alive by its workers would never give it (one overall deadline)
  const out = await withDeadline(
    "a process that used worker threads exits",
    10 * 60_000,
    () => child.output(),
  )
    .finally(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
    });
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.equal(new TextDecoder().decode(out.stdout).trim(), "1 256");
});
