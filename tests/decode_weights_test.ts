/**
 * CPU decoding with compressed weights and several threads (lib/decode/stepper.ts, lib/kernels/wasm/
 * decode.ts and threads.ts): the bfloat16 and int8 formats against their definitions, each SIMD kernel
 * against its plain-JS twin, the thread gang, the stepper split over threads against one thread (bit for
 * bit), and the formats' bits per byte against float32 on the trained reference model, through the
 * library and the command line.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { FIXTURES, relL2, runCli, TEST_BACKENDS, trainedModelDir, useBackend } from "./helpers.ts";
import {
  DECODE_THREAD_KERNELS,
  DecodeFn,
  decodeKernels,
  fromBf16,
  matvec,
  matvecBf16,
  matvecQ8,
  MemoryReader,
  Q8_BLOCK,
  quantizeQ8,
  quantizeX16,
  toBf16,
  type WeightFormat,
} from "../lib/kernels/wasm/decode.ts";
import { KernelThreads, liveKernelThreads, splitAligned } from "../lib/kernels/wasm/threads.ts";
import { kernelModules } from "../lib/kernels/wasm/pool.ts";
import { MambaStepper } from "../lib/decode/stepper.ts";
import { asMamba, loadModel } from "../lib/models/registry.ts";
import { scoreText } from "../lib/eval/score.ts";
import { generate } from "../lib/decode/sample.ts";
import { readSafetensors } from "../lib/io/safetensors.ts";
import { Rng } from "../lib/util/rng.ts";

await useBackend("wasm");
const { dir, prompt, greedy } = await trainedModelDir();
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
// held-out text: the other GPL v3 batch (train3's), which the trained reference did not see in this order
const heldOut = Uint8Array.from(
  (await readSafetensors(`${FIXTURES}mambabyte-train3-public.expected.safetensors`)).tensors.get("input_ids")!
    .data as Int32Array,
);

Deno.test("toBf16 rounds float32 to nearest even (IEEE bit patterns); fromBf16 widens exactly", () => {
  const cases: [number, number][] = [
    [1, 0x3f80],
    [1 + 2 ** -8, 0x3f80], // a tie: to the even mantissa
    [1 + 3 * 2 ** -8, 0x3f82], // a tie: to the even mantissa, upwards
    [1 + 2 ** -8 + 2 ** -20, 0x3f81], // above the tie
    [-2.5, 0xc020],
    [0, 0],
    [-0, 0x8000],
    [Infinity, 0x7f80],
  ];
  const bits = toBf16(Float32Array.from(cases.map(([v]) => v)));
  cases.forEach(([v, want], i) => assert.equal(bits[i], want, `toBf16(${v})`));
  assert.ok(Number.isNaN(fromBf16(toBf16(Float32Array.of(NaN)))[0]), "NaN stays NaN");
  assert.deepEqual(Array.from(fromBf16(Uint16Array.of(0x3f80, 0xc020, 0x3f81))), [1, -2.5, 1 + 2 ** -7]);
});

Deno.test("quantizeQ8: |q| <= 127 and |w - q s| <= s / 2 for every weight, s = max |w| / 127 per row and block of 64; quantizeX16 likewise at 32767", () => {
  const rng = new Rng(5);
  const rows = 6, cols = 3 * Q8_BLOCK;
  const W = rng.normalArray(rows * cols);
  W.fill(0, Q8_BLOCK, 2 * Q8_BLOCK); // an all-zero block
  W[5 * cols + 7] = 40; // an outlier in one block
  const { q, scales } = quantizeQ8(W, rows, cols);
  assert.equal(scales.length, rows * cols / Q8_BLOCK);
  for (let b = 0; b < scales.length; b++) {
    const block = W.subarray(b * Q8_BLOCK, (b + 1) * Q8_BLOCK);
    assert.equal(scales[b], Math.fround(Math.max(...block.map(Math.abs)) / 127), `scale of block ${b}`);
    for (let i = 0; i < Q8_BLOCK; i++) {
      const at = b * Q8_BLOCK + i;
      assert.ok(Math.abs(q[at]) <= 127);
      assert.ok(Math.abs(W[at] - q[at] * scales[b]) <= scales[b] / 2 * (1 + 1e-6), `weight ${at}`);
    }
  }
  assert.throws(() => quantizeQ8(W, rows * 2, cols / 2), /cols 96 is not a multiple of 64/);
  const x = rng.normalArray(100), xq = new Int16Array(100);
  const s = quantizeX16(x, xq, 100);
  assert.equal(s, Math.fround(Math.max(...x.map(Math.abs)) / 32767));
  x.forEach((v, i) => assert.ok(Math.abs(v - xq[i] * s) <= s / 2 * (1 + 1e-6)));
  assert.equal(quantizeX16(new Float32Array(8), xq, 8), 0);
});

/** The decoding kernels on one memory, with a bump allocator for typed arrays copied into it. */
function kernelMemory(floats: number) {
  const k = decodeKernels(floats)!;
  const fns = new WebAssembly.Instance(kernelModules()[0], { env: { memory: k.mem } })
    .exports as unknown as Record<string, (...a: number[]) => void>;
  let top = 0;
  const put = <A extends Float32Array | Int8Array | Int16Array | Uint16Array>(a: A): A => {
    const v = new (a.constructor as new (b: ArrayBufferLike, at: number, n: number) => A)(
      k.mem.buffer,
      top,
      a.length,
    );
    v.set(a as never);
    top += Math.ceil(a.byteLength / 64) * 64;
    return v;
  };
  return { mem: k.mem, fns, put };
}

Deno.test("step.wat's quantizeX16 (the one-dispatch step's int8 inputs) equals decode.ts quantizeX16 bit for bit: halves rounded up, clamps, zeros, NaN, random vectors", () => {
  const mem = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  const kernel = new WebAssembly.Instance(kernelModules()[0], { env: { memory: mem } }).exports
    .quantizeX16 as (x: number, xq: number, cols: number) => number;
  const rng = new Rng(3);
  const cases: number[][] = [
    // max |x| 32767: the scale is 1, so these are exact halves (Math.round takes them up, -2.5 to -2)
    [32767, 2.5, -2.5, 0.5, -0.5, 1.5, -1.5, 32766.5, -32767, 0, -0],
    [0, 0, 0, 0], // scale 0: all zeros
    [1e-42, -1e-43, 0, 5e-44], // subnormals whose scale rounds to 0 in float32: zeros, not +-32767
    [1e-30, -3e-31, 7e-31, 0], // tiny values
    [NaN, 1, 2, 3], // NaN poisons the scale: every value rounds to 0
    Array.from({ length: 64 }, () => (rng.uniform() - 0.5) * 8),
    Array.from({ length: 40 }, () => (rng.uniform() - 0.5) * 1e4),
  ];
  for (const values of cases) {
    const x = new Float32Array(mem.buffer, 0, values.length);
    x.set(values);
    const want = new Int16Array(values.length);
    const wantScale = quantizeX16(x, want, values.length);
    const gotScale = kernel(0, 4096, values.length);
    const got = new Int16Array(mem.buffer, 4096, values.length);
    assert.ok(Object.is(gotScale, wantScale), `scale of ${values.slice(0, 4)}: ${gotScale} !== ${wantScale}`);
    assert.deepEqual(Array.from(got), Array.from(want), `values of ${values.slice(0, 4)}`);
  }
});

Deno.test("mvBf16 / mvQ8 equal their plain-JS twins (1e-6), the twins equal float32 products of the widened weights, and the 4-vector kernels equal the 1-vector ones bit for bit", () => {
  const rng = new Rng(11);
  for (const [rows, cols] of [[37, 192], [5, 64], [16, 128]]) {
    const { fns, put } = kernelMemory(1 << 20);
    const W = rng.normalArray(rows * cols);
    const X = put(rng.normalArray(4 * cols));
    const y1 = put(new Float32Array(rows)), y4 = put(new Float32Array(4 * rows));
    const twin = new Float32Array(rows), exact = new Float32Array(rows);
    // bfloat16
    const Wb = put(toBf16(W));
    fns.mv4Bf16(Wb.byteOffset, X.byteOffset, cols * 4, y4.byteOffset, rows * 4, rows, cols);
    for (let t = 0; t < 4; t++) {
      const x = X.subarray(t * cols, (t + 1) * cols);
      fns.mvBf16(Wb.byteOffset, x.byteOffset, y1.byteOffset, rows, cols);
      matvecBf16(Wb, x, twin, rows, cols);
      matvec(fromBf16(Wb), x, exact, rows, cols);
      assert.ok(relL2(y1, twin) < 1e-6, `mvBf16 ${rows}x${cols}: ${relL2(y1, twin)}`);
      assert.ok(relL2(twin, exact) < 1e-6, `matvecBf16 ${rows}x${cols}`);
      assert.deepEqual(y4.subarray(t * rows, (t + 1) * rows), y1, `mv4Bf16 vector ${t}`);
    }
    // int8 weights, int16 inputs
    const { q, scales } = quantizeQ8(W, rows, cols);
    const Wq = put(q), S = put(scales), xq = put(new Int16Array(4 * cols));
    const sx = [0, 1, 2, 3].map((t) => quantizeX16(X.subarray(t * cols), xq.subarray(t * cols), cols));
    fns.mv4Q8(Wq.byteOffset, S.byteOffset, xq.byteOffset, cols * 2, y4.byteOffset, rows * 4, rows, cols);
    const deq = Float32Array.from(q, (v, i) => v * scales[Math.floor(i / Q8_BLOCK)]);
    for (let t = 0; t < 4; t++) {
      const x = xq.subarray(t * cols, (t + 1) * cols);
      fns.mvQ8(Wq.byteOffset, S.byteOffset, x.byteOffset, y1.byteOffset, rows, cols);
      matvecQ8(q, scales, x, twin, rows, cols);
      matvec(deq, Float32Array.from(x, (v) => v * sx[t]), exact, rows, cols);
      assert.ok(relL2(y1, twin) < 1e-6, `mvQ8 ${rows}x${cols}: ${relL2(y1, twin)}`);
      assert.ok(relL2(twin.map((v) => v * sx[t]), exact) < 1e-6, `matvecQ8 ${rows}x${cols}`);
      assert.deepEqual(y4.subarray(t * rows, (t + 1) * rows), y1, `mv4Q8 vector ${t}`);
    }
  }
});

Deno.test("gemmPanels (the prefill's Y = X W^T, each panel of W packed per thread in cache) equals doubles (1e-5) and pack + gemm bit for bit; split panels equal one call", () => {
  const rng = new Rng(21);
  // K: a multiple of 4 (the transposing loop only), 13 and 6 (its tail of 1 and 2 columns, 6 below one
  // vector); T: whole and partial tiles of 6 ids; X rows with a stride past K (xz's halves)
  for (const [N, K, T, xStride] of [[16, 64, 12, 64], [24, 13, 7, 20], [8, 6, 1, 6], [40, 36, 25, 40]]) {
    const { mem, put } = kernelMemory(1 << 18);
    const mm = new WebAssembly.Instance(kernelModules()[1], { env: { memory: mem } })
      .exports as unknown as Record<string, (...a: number[]) => void>;
    const tiles = Math.ceil(T / 6);
    const W = put(rng.normalArray(N * K)), X = put(rng.normalArray(tiles * 6 * xStride));
    const Y = put(new Float32Array(tiles * 6 * N)), Y2 = put(new Float32Array(tiles * 6 * N));
    const Yref = put(new Float32Array(tiles * 6 * N)), packedAll = put(new Float32Array(N * K));
    const scratch = put(new Float32Array(2 * 8 * K));
    const params = put(new Float32Array(16)), words = new Int32Array(mem.buffer, params.byteOffset, 16);
    const setParams = (B: number, C: number) =>
      words.set([X.byteOffset, xStride * 4, 4, B, K, C, N * 4, N, 24 * xStride, 0, tiles]);
    setParams(W.byteOffset, Y.byteOffset);
    mm.gemmPanels(params.byteOffset, 0, N / 8, scratch.byteOffset);
    // two threads' share: panels split, each with its own scratch
    setParams(W.byteOffset, Y2.byteOffset);
    mm.gemmPanels(params.byteOffset, 0, 1, scratch.byteOffset);
    mm.gemmPanels(params.byteOffset, 1, N / 8, scratch.byteOffset + 8 * K * 4);
    assert.deepEqual(Y2, Y);
    // the scalar pack of all of W (transposed), then gemm's tiles over the packed panels
    mm.pack(W.byteOffset, K, N, 1, packedAll.byteOffset);
    setParams(packedAll.byteOffset, Yref.byteOffset);
    mm.gemm(params.byteOffset, 0, tiles, 0);
    assert.deepEqual(Y, Yref);
    for (let t = 0; t < T; t++) {
      for (let o = 0; o < N; o++) {
        let sum = 0;
        for (let k = 0; k < K; k++) sum += X[t * xStride + k] * W[o * K + k];
        assert.ok(
          Math.abs(Y[t * N + o] - sum) <= 1e-5 * Math.max(1, Math.abs(sum)),
          `N ${N} K ${K} (${t}, ${o})`,
        );
      }
    }
  }
});

Deno.test("convRows (a prefill's conv, 4 taps, channels in pairs) equals the conv in doubles rounded once, bit for bit, windows included; split channels equal one call", () => {
  const rng = new Rng(23);
  for (const [e, T, bias] of [[6, 9, true], [10, 1, false], [4, 40, true]] as const) {
    const k = 4, xs = 2 * e; // x_in: the first e columns of xz's rows
    const { fns, put } = kernelMemory(1 << 16);
    const X = put(rng.normalArray(T * xs)), W = put(rng.normalArray(e * k)), B = put(rng.normalArray(e));
    const win0 = rng.normalArray(e * k);
    const win = put(win0.slice()), Y = put(new Float32Array(T * e));
    const win2 = put(win0.slice()), Y2 = put(new Float32Array(T * e));
    fns.convRows(
      X.byteOffset,
      xs * 4,
      Y.byteOffset,
      e * 4,
      win.byteOffset,
      W.byteOffset,
      B.byteOffset,
      bias ? 1 : 0,
      e,
      T,
    );
    // two threads' shares: channels [0, 2) and [2, e)
    const at = (a: Float32Array, floats: number) => a.byteOffset + floats * 4;
    fns.convRows(
      X.byteOffset,
      xs * 4,
      Y2.byteOffset,
      e * 4,
      win2.byteOffset,
      W.byteOffset,
      B.byteOffset,
      bias ? 1 : 0,
      2,
      T,
    );
    fns.convRows(
      at(X, 2),
      xs * 4,
      at(Y2, 2),
      e * 4,
      at(win2, 2 * k),
      at(W, 2 * k),
      at(B, 2),
      bias ? 1 : 0,
      e - 2,
      T,
    );
    assert.deepEqual(Y2, Y);
    assert.deepEqual(win2, win);
    // the definition: each window shifted left, the new x appended; y the bias plus the taps times w, summed
    // in order in doubles, rounded to float32 once
    const ref = win0.slice(), yRef = new Float32Array(T * e);
    for (let t = 0; t < T; t++) {
      for (let c = 0; c < e; c++) {
        const w = ref.subarray(c * k, c * k + k);
        w.copyWithin(0, 1);
        w[k - 1] = X[t * xs + c];
        let sum = bias ? B[c] : 0;
        for (let j = 0; j < k; j++) sum += w[j] * W[c * k + j];
        yRef[t * e + c] = sum;
      }
    }
    assert.deepEqual(Y, yRef);
    assert.deepEqual(win, ref);
  }
});

Deno.test("siluRows (the gates) equals x sigmoid(x) in doubles, in place and multiplied into y, over strided rows; split rows equal one call bit for bit", () => {
  const rng = new Rng(9);
  const e = 20, T = 5, xs = 2 * e; // rows of x (2e floats apart), e values from column e: the z half of xz
  const { fns, put } = kernelMemory(1 << 16);
  const X = Float32Array.from(rng.normalArray(T * xs).map((v) => 4 * v));
  const Y0 = Float32Array.from(rng.normalArray(T * e));
  const silu = (v: number) => v / (1 + Math.exp(-v));
  // y *= silu(z), rows split in two calls as two threads would
  const x = put(X), y = put(Y0.slice()), whole = put(Y0.slice());
  const z0 = x.byteOffset + e * 4;
  fns.siluRows(z0, xs * 4, whole.byteOffset, e * 4, e, T, 1);
  fns.siluRows(z0, xs * 4, y.byteOffset, e * 4, e, 2, 1);
  fns.siluRows(z0 + 2 * xs * 4, xs * 4, y.byteOffset + 2 * e * 4, e * 4, e, T - 2, 1);
  assert.deepEqual(y, whole);
  const ref = Float64Array.from(
    { length: T * e },
    (_, i) => Y0[i] * silu(X[Math.floor(i / e) * xs + e + (i % e)]),
  );
  assert.ok(relL2(y, ref) < 1e-6, `gate vs doubles: ${relL2(y, ref)}`);
  // x = silu(x) in place on the first e columns of each row; the other columns untouched
  const inPlace = put(X.slice());
  fns.siluRows(inPlace.byteOffset, xs * 4, inPlace.byteOffset, xs * 4, e, T, 0);
  for (let t = 0; t < T; t++) {
    for (let c = 0; c < xs; c++) {
      const v = X[t * xs + c], got = inPlace[t * xs + c];
      if (c >= e) assert.equal(got, v);
      else assert.ok(Math.abs(got - silu(v)) <= 4e-7 * Math.max(1, Math.abs(v)), `silu(${v}) = ${got}`);
    }
  }
});

Deno.test("ssmScan (a prefill's recurrence over T bytes, by channels) equals ssmStep byte after byte bit for bit; ssmStep equals exp(dt A) h + dt x B, <h, C> in doubles (1e-5)", () => {
  const rng = new Rng(8);
  const e = 12, n = 16, T = 7, w = 3 + 2 * n; // xDbl rows: dt_low (3), B, C
  const { fns, put } = kernelMemory(1 << 18);
  const A = Float32Array.from(rng.uniformArray(e * n, -8, -0.1));
  const A2 = put(A.map((v) => v * Math.LOG2E));
  const dt = put(rng.uniformArray(T * e, 0.001, 0.5)), x = put(rng.normalArray(T * e));
  const xDbl = put(rng.normalArray(T * w)), h0 = rng.normalArray(e * n);
  // ssmStep one byte at a time (ping-pong states), the reference in doubles beside it
  const hA = put(h0.slice()), hB = put(new Float32Array(e * n)), yStep = put(new Float32Array(T * e));
  const ref = Float64Array.from(h0), yRef = new Float64Array(T * e);
  let cur = hA, next = hB;
  for (let t = 0; t < T; t++) {
    const B = xDbl.byteOffset + (t * w + 3) * 4;
    fns.ssmStep(
      cur.byteOffset,
      next.byteOffset,
      A2.byteOffset,
      dt.byteOffset + t * e * 4,
      x.byteOffset + t * e * 4,
      B,
      B + n * 4,
      yStep.byteOffset + t * e * 4,
      e,
      n,
    );
    [cur, next] = [next, cur];
    for (let c = 0; c < e; c++) {
      let s = 0;
      for (let j = 0; j < n; j++) {
        const v = Math.exp(dt[t * e + c] * A[c * n + j]) * ref[c * n + j] +
          dt[t * e + c] * x[t * e + c] * xDbl[t * w + 3 + j];
        ref[c * n + j] = v;
        s += v * xDbl[t * w + 3 + n + j];
      }
      yRef[t * e + c] = s;
    }
  }
  assert.ok(relL2(yStep, yRef) < 1e-5 && relL2(cur, ref) < 1e-5, `ssmStep vs doubles: ${relL2(yStep, yRef)}`);
  // ssmScan over all T bytes, channels split in two calls as two threads would
  const h = put(h0.slice()), yScan = put(new Float32Array(T * e));
  for (const [a, b] of [[0, 5], [5, e]]) {
    fns.ssmScan(
      h.byteOffset + a * n * 4,
      A2.byteOffset + a * n * 4,
      dt.byteOffset + a * 4,
      x.byteOffset + a * 4,
      yScan.byteOffset + a * 4,
      xDbl.byteOffset + 3 * 4,
      b - a,
      n,
      T,
      e * 4,
      w * 4,
    );
  }
  assert.deepEqual(yScan, yStep);
  assert.deepEqual(h, cur);
});

Deno.test("MemoryReader (the decoding bench's read ceiling) reads every float once: its threads' sums add up to the count read, whole runs of 16 per thread, on 1, 3 and 6 threads", () => {
  for (
    const [threads, asked, read] of [[1, 1000, 992], [3, 3 * 1024 + 50, 3 * 1024 + 48], [6, 2 ** 14, 16_320]]
  ) {
    const reader = new MemoryReader(threads, asked);
    try {
      const { bytesPerS, sum } = reader.measure(2);
      assert.equal(reader.floats, read, `${threads} threads, ${asked} floats asked`);
      assert.equal(sum, reader.floats, `${threads} threads: the sum of ${reader.floats} ones`);
      assert.ok(bytesPerS > 0 && Number.isFinite(bytesPerS));
    } finally {
      reader.close();
    }
  }
  assert.throws(() => new MemoryReader(2, 20), /fewer than 16 per thread/);
});

Deno.test("KernelThreads: a product split by rows over 3 threads equals one thread bit for bit; a trap in a worker is rethrown; close ends the workers", () => {
  const rng = new Rng(2);
  const rows = 100, cols = 256;
  const { mem, put } = kernelMemory(1 << 20);
  const W = put(rng.normalArray(rows * cols)), x = put(rng.normalArray(cols));
  const one = put(new Float32Array(rows)), split = put(new Float32Array(rows));
  const before = liveKernelThreads();
  const gang = new KernelThreads(kernelModules(), [mem], DECODE_THREAD_KERNELS, 3);
  try {
    gang.run(0, DecodeFn.mv, [[W.byteOffset, x.byteOffset, one.byteOffset, rows, cols]]);
    const parts = splitAligned(rows, 3, 16);
    assert.deepEqual(parts, [[0, 32], [32, 64], [64, 100]]);
    gang.run(
      0,
      DecodeFn.mv,
      parts.map((
        [a, b],
      ) => [W.byteOffset + a * cols * 4, x.byteOffset, split.byteOffset + a * 4, b - a, cols]),
    );
    assert.equal(liveKernelThreads(), before + 2);
    assert.deepEqual(split, one);
    const outside = mem.buffer.byteLength; // reading past the memory traps
    assert.throws(
      () =>
        gang.run(0, DecodeFn.mv, [[W.byteOffset, x.byteOffset, one.byteOffset, 1, cols], [
          outside,
          0,
          0,
          1,
          8,
        ]]),
      /failed in a worker thread/,
    );
  } finally {
    gang.close();
  }
  assert.equal(liveKernelThreads(), before);
});

Deno.test("MambaStepper over 2 threads equals 1 thread bit for bit (every format, a 64-byte prefill and steps); dispose ends its threads", async () => {
  const model = asMamba(await loadModel(dir));
  const ids = Array.from(prompt);
  const before = liveKernelThreads();
  for (const weights of ["f32", "bf16", "int8"] as WeightFormat[]) {
    const one = new MambaStepper(model, undefined, { weights, threads: 1 });
    const two = new MambaStepper(model, undefined, { weights, threads: 2 });
    assert.equal(two.threads, 2);
    const a = one.read(one.emptyState(), ids, "last"), b = two.read(two.emptyState(), ids, "last");
    assert.ok(liveKernelThreads() > before, `${weights}: the pass was split over a worker`);
    assert.deepEqual(b.logits, a.logits, `${weights}: pass logits`);
    assert.deepEqual(b.states, a.states, `${weights}: state after the pass`);
    const sa = one.stepSync(a.states[0], 32), sb = two.stepSync(b.states[0], 32);
    assert.deepEqual(sb.logits, sa.logits, `${weights}: step logits`);
    one.dispose();
    two.dispose();
    assert.equal(liveKernelThreads(), before, `${weights}: dispose ends the worker`);
    // a disposed stepper still decodes, on one thread, and starts no thread again
    assert.equal(two.threads, 1);
    assert.deepEqual(two.read(two.emptyState(), ids, "last").logits, b.logits, `${weights}: after dispose`);
    assert.equal(liveKernelThreads(), before, `${weights}: no thread restarted after dispose`);
  }
  tf.dispose([...model.params.values()]);
});

Deno.test(
  "generate with a weight format decodes on the CPU stepper on webgpu too (weights read asynchronously), as on wasm",
  { ignore: !TEST_BACKENDS.includes("webgpu") },
  async () => {
    const want: number[][] = [];
    for (const backend of ["wasm", "webgpu"] as const) {
      await useBackend(backend);
      const model = asMamba(await loadModel(dir));
      want.push(Array.from(await generate(model, prompt, 12, { greedy: true, weights: "int8" })));
      tf.dispose([...model.params.values()]);
    }
    assert.deepEqual(want[1], want[0]);
    await useBackend("wasm");
  },
);

Deno.test("bf16 and int8 steppers: SIMD equals the plain-JS twins (1e-4), logits near float32's, bits per byte of held-out text within 0.01 of float32 (f32 stepper = the model's forward pass)", async () => {
  const lm = await loadModel(dir);
  const model = asMamba(lm);
  const ids = Array.from(prompt);
  const ref = new MambaStepper(model);
  const f32 = ref.read(ref.emptyState(), ids, "last").logits;
  ref.dispose();
  const forward = (await scoreText(lm, heldOut, { window: 2048 })).bits_per_byte;
  const viaStepper = (await scoreText(lm, heldOut, { window: 2048, weights: "f32" })).bits_per_byte;
  assert.ok(Math.abs(viaStepper - forward) < 1e-5, `f32 stepper ${viaStepper} vs forward ${forward}`);
  for (const [weights, logitsTol] of [["bf16", 0.01], ["int8", 0.03]] as [WeightFormat, number][]) {
    const simd = new MambaStepper(model, undefined, { weights });
    const plain = new MambaStepper(model, undefined, { weights, kernels: false });
    assert.ok(simd.simd && !plain.simd);
    assert.equal(simd.formats[weights], 2 * 3 + 1, `${weights}: in, x and out projections and the head`);
    const a = simd.read(simd.emptyState(), ids, "last").logits;
    const b = plain.read(plain.emptyState(), ids, "last").logits;
    // (int8: the two paths' inputs differ in the last float bits, so an int16 rounding can flip by one)
    assert.ok(relL2(a, b) < 1e-4, `${weights}: SIMD vs plain JS ${relL2(a, b)}`);
    assert.ok(relL2(a, f32) < logitsTol, `${weights}: logits vs float32 ${relL2(a, f32)}`);
    simd.dispose();
    plain.dispose();
    const bpb = (await scoreText(lm, heldOut, { window: 2048, weights })).bits_per_byte;
    assert.ok(Math.abs(bpb - viaStepper) < 0.01, `${weights}: ${bpb} bits/byte vs float32 ${viaStepper}`);
  }
  tf.dispose([...model.params.values()]);
});

const cli = runCli;

Deno.test("cli score --weights int8 reports its bits per byte beside float32's; generate --weights decodes greedily; bad values fail in one line", async () => {
  const text = `${dir}/held-out.txt`, promptFile = `${dir}/prompt.bin`;
  await Deno.writeFile(text, heldOut);
  await Deno.writeFile(promptFile, prompt);
  const s = await cli("score", "--model", dir, "--text", text, "--window", "2048", "--weights", "int8");
  assert.equal(s.code, 0, s.stderr);
  const r = JSON.parse(new TextDecoder().decode(s.stdout));
  assert.equal(r.weights, "int8");
  assert.ok(Math.abs(r.bits_per_byte - r.f32_bits_per_byte - r.bits_per_byte_minus_f32) < 1e-12);
  assert.ok(Math.abs(r.bits_per_byte_minus_f32) < 0.01, JSON.stringify(r));
  const generateArgs = (maxBytes: number) => [
    "generate",
    "--model",
    dir,
    "--prompt-file",
    promptFile,
    "--max-bytes",
    String(maxBytes),
  ];
  const greedyBytes = (maxBytes: number, weights: string) =>
    cli(...generateArgs(maxBytes), "--greedy", "--weights", weights);
  const g = await greedyBytes(greedy.length, "f32");
  assert.equal(g.code, 0, g.stderr);
  assert.deepEqual(
    Array.from(g.stdout),
    greedy,
    "f32 on the stepper: mamba_ssm's bytes",
  );
  const g8 = await greedyBytes(16, "int8");
  assert.equal(g8.code, 0, g8.stderr);
  assert.equal(g8.stdout.length, 16);
  // eval records a format's score in eval_weights.jsonl (not eval.jsonl, which the figures read)
  const results = `${dir}/results`;
  const ev = await cli(
    "eval",
    "--model",
    dir,
    "--data",
    "books",
    "--scale",
    "smoke",
    "--max-bytes",
    "4096",
    "--weights",
    "bf16",
    "--results",
    results,
  );
  assert.equal(ev.code, 0, ev.stderr);
  const [rec] = (await Deno.readTextFile(`${results}/eval_weights.jsonl`)).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  assert.equal(rec.weights, "bf16");
  assert.equal(rec.bits_per_byte - rec.f32_bits_per_byte, rec.bits_per_byte_minus_f32);
  assert.ok(rec.provenance.commit);
  assert.ok(!(await Deno.stat(`${results}/eval.jsonl`).then(() => true, () => false)));
  for (const args of [["score", "--model", dir, "--text", text], generateArgs(4)]) {
    const bad = await cli(...args, "--weights", "int4");
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
    assert.match(bad.stderr, /--weights must be one of f32, bf16, int8 \(got "int4"\)/);
  }
});
