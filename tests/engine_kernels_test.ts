/**
 * Every kernel of the native engine against its plain-JS twin (lib/kernels/js: the reference), on random
 * inputs of odd sizes: each op is recorded on both engine backends with the same buffers, run, and its
 * outputs compared. The WGSL side runs on WebGPU when MAMBABYTE_TEST_BACKENDS includes webgpu (Mesa's
 * software adapter in CI); a few twins are also checked against independent definitions (the scan
 * against wasm/scan_reference.ts, the GEMM's layouts against plain index arithmetic).
 */
import assert from "node:assert/strict";
import type { Backend } from "../lib/engine/backend.ts";
import { gemm as gemmTwin, type GemmSpec } from "../lib/kernels/js/gemm.ts";
import { sortTokensById } from "../lib/kernels/js/norm.ts";
import { nq4, packBC } from "../lib/kernels/js/scan.ts";
import * as scanRef from "../lib/kernels/wasm/scan_reference.ts";
import { HYPER, STATE } from "../lib/kernels/js/optim.ts";
import { gemvTuning } from "../lib/kernels/webgpu/gemm.ts";
import { Rng } from "../lib/util/rng.ts";
import { relL2 } from "./helpers.ts";
import { check, gpu, js } from "./kernel_check.ts";

const rng = new Rng(2024);
const normal = (n: number, std = 1) => rng.normalArray(n, std);
const uniform = (n: number, lo: number, hi: number) => rng.uniformArray(n, lo, hi);

Deno.test("engine kernels: GEMM layouts (transposes, leading dims, offsets, batches, segmented k, accumulate, split k)", async () => {
  const specs: GemmSpec[] = [];
  for (const [tA, tB] of [[false, false], [false, true], [true, false], [true, true]]) {
    specs.push({ M: 37, N: 29, K: 45, transposeA: tA, transposeB: tB });
    specs.push({ M: 70, N: 131, K: 19, transposeA: tA, transposeB: tB, accumulate: true });
    // below one 6 x 8 tile of the WebAssembly kernel, and k of one
    specs.push({ M: 5, N: 7, K: 1, transposeA: tA, transposeB: tB, accumulate: true });
  }
  // a few rows against weights stored (N, K) (decoding: the WGSL GEMV), with leading dims and offsets
  for (const M of [1, 3, 8]) {
    specs.push({ M, N: 77, K: 300, transposeA: false, transposeB: true });
    // k long enough for the unrolled loads (1100 / 4 = 275 vectors: 2 unrolled rounds, then the rest), with
    // A's rows as vectors and, at lda 1102, as scalars
    specs.push({ M, N: 21, K: 1100, transposeA: false, transposeB: true });
    specs.push({ M, N: 13, K: 1100, transposeA: false, transposeB: true, lda: 1102 });
    // few columns: 256 lanes per column, long enough k (4000 / 4 = 1000 vectors) for their unrolled loads
    specs.push({ M, N: 21, K: 4000, transposeA: false, transposeB: true });
    // many columns: 32 lanes per column (as in_proj)
    specs.push({ M, N: 4100, K: 1100, transposeA: false, transposeB: true });
    specs.push({
      M,
      N: 19,
      K: 33,
      transposeA: false,
      transposeB: true,
      lda: 48,
      ldb: 40,
      ldc: 25,
      offA: 5,
      offB: 64,
      offC: 3,
      accumulate: true,
    });
  }
  // the engine's shapes: a batch of channel-major products, a column slice with a leading dim, a
  // reduction over (batch, length) of a channel-major operand (segmented k), split k into a slice of C
  const b = 3, l = 23, e = 18, d = 13, R = 11;
  specs.push({
    M: e,
    N: l,
    K: d,
    transposeA: false,
    transposeB: true,
    batch: b,
    strideB: l * d,
    strideC: e * l,
  });
  specs.push({
    M: e,
    N: l,
    K: 4,
    transposeA: false,
    transposeB: true,
    ldb: R,
    batch: b,
    strideB: l * R,
    strideC: e * l,
  });
  specs.push({ M: e, N: d, K: b * l, transposeA: false, transposeB: false, lda: l, kSeg: l, segA: e * l });
  specs.push({
    M: R,
    N: e,
    K: b * l,
    transposeA: true,
    transposeB: true,
    ldb: l,
    kSeg: l,
    segB: e * l,
    offC: 5,
  });
  specs.push({
    M: 20,
    N: 30,
    K: 3000,
    transposeA: true,
    transposeB: false,
    splitK: true,
    accumulate: true,
    ldc: 33,
  });
  for (const spec of specs) {
    const g = { ...spec };
    const batch = g.batch ?? 1;
    const span = (ld: number, rows: number, stride: number) => ld * rows + stride * batch + 4000;
    // a GEMV's operands are rows of k (A (M, K), B stored (N, K)): sized to them, not to a square
    const gemv = !g.transposeA && g.transposeB && batch === 1 && g.M <= 8;
    const aRows = gemv ? g.M : Math.max(g.M, g.K), bRows = gemv ? g.N : Math.max(g.N, g.K);
    await check(`gemm ${JSON.stringify(spec)}`, {
      inputs: {
        a: normal(span(Math.max(g.M, g.K, g.lda ?? 0), aRows, g.strideA ?? 0) + (g.offA ?? 0)),
        b: normal(span(Math.max(g.N, g.K, g.ldb ?? 0), bRows, g.strideB ?? 0) + (g.offB ?? 0)),
        c: normal(span(g.ldc ?? g.N, g.M, g.strideC ?? 0) + (g.offC ?? 0)),
      },
      outputs: { c: 1e-5 },
      run: (ops, bf) => ops.gemm(g, { a: bf.a, b: bf.b, c: bf.c }),
    });
  }
});

Deno.test("engine kernels: GEMV of several rows (a pass's positions): lanes with 2-4 columns a group, 8 to 256 lanes a column, partial batches of columns", async () => {
  const saved = { ...gemvTuning };
  // the lanes kernel with several columns per group (the default, one, runs in every other test), with 8
  // lanes a column (passMinGroups 1: the fewest, widest workgroups), and with the steps' settings (512
  // workgroups, lanes from 32: 256 lanes a column here); each setting's shaders compile anew on lavapipe,
  // so the cases are few
  const settings = [
    { passColumns: 2, passNormColumns: 2 },
    { passColumns: 4, passNormColumns: 4 },
    { passMinGroups: 1, passMinLanes: 8 },
    { passMinGroups: 512, passMinLanes: 32 },
  ];
  try {
    for (const setting of settings) {
      Object.assign(gemvTuning, saved, setting);
      const passColumns = JSON.stringify(setting);
      // rows 2..8; N not a multiple of the columns; K 44 (the remainder loop only) and 3200 (the unrolled
      // loop); scalar weights (K 45); accumulate; a folded norm; the conv epilogue over a pass with snapshots
      for (
        const [M, N, K, accumulate] of [[8, 37, 44, false], [3, 11, 3200, true], [2, 5, 45, false]] as const
      ) {
        const spec = { M, N, K, transposeA: false, transposeB: true, accumulate };
        await check(`gemv ${passColumns} ${JSON.stringify(spec)}`, {
          inputs: { a: normal(M * K), b: normal(N * K), c: normal(M * N) },
          outputs: { c: 1e-5 },
          run: (ops, b) => ops.gemm(spec, { a: b.a, b: b.b, c: b.c }),
        });
        const p = { rows: M, d: K, N, eps: 1e-5 };
        await check(`normGemv ${passColumns} ${JSON.stringify(p)}`, {
          inputs: { x: normal(M * K), w: uniform(K, 0.5, 1.5), W: normal(N * K), c: new Float32Array(M * N) },
          outputs: { c: 1e-5 },
          run: (ops, b) => ops.normGemv(p, { x: b.x, w: b.w, W: b.W, c: b.c }),
        });
      }
      const rows = 5, K = 3200, p = { rows, K, ch: 9, k: 4, bias: true, pass: true, norm: { eps: 1e-5 } };
      await check(`gemvConv ${passColumns} ${JSON.stringify(p)}`, {
        inputs: {
          a: normal(rows * K),
          gain: uniform(K, 0.5, 1.5),
          W: normal(18 * K),
          c: new Float32Array(rows * 18),
          window: normal(9 * 4),
          w: normal(9 * 4),
          bias: normal(9),
          u: new Float32Array(rows * 9),
          snaps: new Float32Array((rows + 1) * 9 * 4),
        },
        outputs: { c: 1e-5, window: 1e-5, u: 1e-5, snaps: 1e-5 },
        run: (ops, b) => ops.gemvConv(p, { ...b, a: b.a, W: b.W, c: b.c, window: b.window, w: b.w, u: b.u }),
      });
    }
  } finally {
    Object.assign(gemvTuning, saved);
  }
});

Deno.test("engine kernels: the GEMM twin's layouts equal plain index arithmetic", () => {
  // C[z] (M, N) += sum over (s, t) of A[z-independent](m, s l + t) B(s l + t, n), A channel-major
  const M = 5, N = 4, bsz = 3, l = 7, K = bsz * l;
  const A = normal(bsz * M * l), B = normal(K * N + 3), C = normal(M * 6 + 2);
  const want = Float32Array.from(C);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let bb = 0; bb < bsz; bb++) {
        for (let t = 0; t < l; t++) s += A[bb * M * l + m * l + t] * B[3 + (bb * l + t) * N + n];
      }
      want[2 + m * 6 + n] += s;
    }
  }
  gemmTwin(
    {
      M,
      N,
      K,
      transposeA: false,
      transposeB: false,
      lda: l,
      kSeg: l,
      segA: M * l,
      offB: 3,
      offC: 2,
      ldc: 6,
      accumulate: true,
    },
    { a: A, b: B, c: C },
  );
  assert.ok(relL2(C, want) < 1e-6, `${relL2(C, want)}`);
});

Deno.test("engine kernels: embedding gather and its sorted scatter-add; residual add + RMSNorm forward and backward", async () => {
  const batch = 3, len = 17, d = 45, V = 24, vocab = 21, stride = len + 1;
  const ids = Int32Array.from({ length: batch * stride }, () => rng.int(vocab));
  const order = new Int32Array(batch * len), rowStart = new Int32Array(V + 1);
  sortTokensById(ids, { batch, len, stride, d, V }, vocab, order, rowStart);
  // every token row appears once, grouped by id
  assert.deepEqual([...order].sort((a, b) => a - b), [...Array(batch * len).keys()]);
  for (let v = 0; v < V; v++) {
    for (let j = rowStart[v]; j < rowStart[v + 1]; j++) {
      const row = order[j];
      assert.equal(ids[Math.floor(row / len) * stride + (row % len)], v);
    }
  }
  assert.throws(
    () =>
      sortTokensById(
        Int32Array.from(ids).fill(vocab, 5, 6),
        { batch, len, stride, d, V },
        vocab,
        order,
        rowStart,
      ),
    /outside/,
  );
  await check("embedding", {
    inputs: { ids, table: normal(V * d), out: new Float32Array(batch * len * d) },
    outputs: { out: 0 },
    run: (ops, b) => ops.embedding({ batch, len, stride, d, V }, { ids: b.ids, table: b.table, out: b.out }),
  });
  for (const accumulate of [false, true]) {
    await check(`embedding backward (accumulate ${accumulate})`, {
      inputs: { order, rowStart, dOut: normal(batch * len * d), dTable: normal(V * d) },
      outputs: { dTable: 1e-6 },
      run: (ops, b) =>
        ops.embeddingBackward({ tokens: batch * len, d, V, accumulate }, {
          order: b.order,
          rowStart: b.rowStart,
          dOut: b.dOut,
          dTable: b.dTable,
        }),
    });
  }
  // a skewed distribution (as bytes are: ' ' and 'e' dominate): one id's run split over parts
  const skewed = Int32Array.from({ length: 2 * 301 }, (_, i) => (i % 10 < 7 ? 3 : (i * 7) % vocab));
  const skewOrder = new Int32Array(600), skewStart = new Int32Array(V + 1);
  sortTokensById(skewed, { batch: 2, len: 300, stride: 301, d: 37, V }, vocab, skewOrder, skewStart);
  assert.ok(skewStart[4] - skewStart[3] > 400);
  await check("embedding backward (skewed ids)", {
    inputs: { order: skewOrder, rowStart: skewStart, dOut: normal(600 * 37), dTable: normal(V * 37) },
    outputs: { dTable: 1e-6 },
    run: (ops, b) =>
      ops.embeddingBackward({ tokens: 600, d: 37, V, accumulate: true }, {
        order: b.order,
        rowStart: b.rowStart,
        dOut: b.dOut,
        dTable: b.dTable,
      }),
  });
  // widths held in registers (up to 2,048) and wider (2,300: read again after the reduction)
  for (const [rows, width] of [[37, 45], [5, 600], [1100, 8], [2, 2300]]) {
    for (const add of [false, true]) {
      const n = rows * width;
      await check(`addRmsNorm ${rows}x${width} add ${add}`, {
        inputs: {
          x: normal(n),
          delta: normal(n),
          res: new Float32Array(n),
          w: normal(width),
          y: new Float32Array(n),
          rstd: new Float32Array(rows),
        },
        outputs: { y: 1e-6, rstd: 1e-6, ...(add ? { res: 0 } : {}) },
        run: (ops, b) =>
          ops.addRmsNorm({ rows, d: width, eps: 1e-5, add }, {
            x: b.x,
            ...(add ? { delta: b.delta, res: b.res } : {}),
            w: b.w,
            y: b.y,
            rstd: b.rstd,
          }),
      });
    }
    for (const accumulate of [false, true]) {
      const n = rows * width;
      await check(`rmsNormBackward ${rows}x${width} accumulate ${accumulate}`, {
        inputs: {
          x: normal(n),
          w: normal(width),
          rstd: uniform(rows, 0.5, 2),
          dy: normal(n),
          dx: normal(n),
          dw: new Float32Array(width),
        },
        outputs: { dx: 1e-5, dw: 1e-5 },
        run: (ops, b) =>
          ops.rmsNormBackward({ rows, d: width, accumulate }, {
            x: b.x,
            w: b.w,
            rstd: b.rstd,
            dy: b.dy,
            dx: b.dx,
            dw: b.dw,
          }),
      });
    }
  }
});

Deno.test("engine kernels: causal depthwise conv + SiLU, forward and backward (with and without bias, k 4 and 3)", async () => {
  for (
    const [batch, ch, len, k, bias] of [[2, 7, 19, 4, true], [3, 5, 2, 4, true], [
      1,
      9,
      33,
      3,
      false,
    ]] as const
  ) {
    const p = { batch, ch, len, k, bias };
    const n = batch * ch * len;
    const inputs = {
      x: normal(n),
      w: normal(ch * k, 0.5),
      bias: normal(ch),
      y: new Float32Array(n),
      dy: normal(n),
      dx: new Float32Array(n),
      dw: new Float32Array(ch * k),
      dbias: new Float32Array(ch),
    };
    const withBias = <B>(b: Record<string, B>) => (bias ? { bias: b.bias } : {});
    await check(`conv ${JSON.stringify(p)}`, {
      inputs,
      outputs: { y: 1e-6 },
      run: (ops, b) => ops.conv(p, { x: b.x, w: b.w, ...withBias(b), y: b.y }),
    });
    await check(`convBackward ${JSON.stringify(p)}`, {
      inputs,
      outputs: { dx: 1e-5, dw: 1e-5, ...(bias ? { dbias: 1e-5 } : {}) },
      run: (ops, b) =>
        ops.convBackward(p, {
          x: b.x,
          w: b.w,
          ...withBias(b),
          dy: b.dy,
          dx: b.dx,
          dw: b.dw,
          ...(bias ? { dbias: b.dbias } : {}),
        }),
    });
  }
});

Deno.test("engine kernels: selective scan forward and backward from packed B, C (odd sizes, chunk edges), and packBC", async () => {
  for (const [batch, dim, len, ns] of [[2, 5, 37, 16], [1, 19, 70, 6], [3, 3, 4, 16]]) {
    const r = 3, R = r + 2 * ns, rows = batch * len;
    const xdbl = normal(rows * R);
    const bct = new Float32Array(rows * 2 * nq4(ns));
    const p = { rows, row: R, offset: r, ns, len };
    await check(`packBC ${JSON.stringify(p)}`, {
      inputs: { x: xdbl, bct },
      outputs: { bct: 0 },
      run: (ops, b) => ops.packBC(p, { x: b.x, bct: b.bct }),
    }, { twinLayout: true });
    packBC(p, { x: xdbl, bct });
    const n = batch * dim * len;
    const inputs = {
      x: xdbl,
      u: normal(n),
      delta: uniform(n, -4, 1),
      A: uniform(dim * ns, -8, -0.1),
      bct,
      D: normal(dim),
      z: normal(n),
      deltaBias: uniform(dim, -3, 0),
      y: new Float32Array(n),
      last: new Float32Array(batch * dim * ns),
      dy: normal(n),
      du: new Float32Array(n),
      ddelta: new Float32Array(n),
      dz: new Float32Array(n),
      dA: new Float32Array(dim * ns),
      dD: new Float32Array(dim),
      dDeltaBias: new Float32Array(dim),
      dbc: normal(rows * R), // the dt columns must survive: only B, C columns are written
    };
    const sp = { batch, dim, len, ns, softplus: true };
    const x = <B>(b: Record<string, B>) => ({
      u: b.u,
      delta: b.delta,
      A: b.A,
      bct: b.bct,
      D: b.D,
      z: b.z,
      deltaBias: b.deltaBias,
    });
    const fwd = await check(`scanForward ${JSON.stringify(sp)}`, {
      inputs,
      outputs: { y: 1e-5, last: 1e-5 },
      run: (ops, b) => {
        ops.packBC(p, { x: b.x, bct: b.bct }); // each backend reads B, C in its own packed layout
        ops.scanForward(sp, { ...x(b), y: b.y, last: b.last });
      },
    });
    const bwd = await check(`scanBackward ${JSON.stringify(sp)}`, {
      inputs,
      outputs: { du: 1e-4, ddelta: 1e-4, dz: 1e-4, dA: 1e-4, dD: 1e-4, dDeltaBias: 1e-4, dbc: 1e-4 },
      run: (ops, b) => {
        ops.packBC(p, { x: b.x, bct: b.bct });
        ops.scanBackward({ ...sp, row: R, offset: r }, {
          ...x(b),
          dy: b.dy,
          du: b.du,
          ddelta: b.ddelta,
          dz: b.dz,
          dA: b.dA,
          dD: b.dD,
          dDeltaBias: b.dDeltaBias,
          dbc: b.dbc,
        });
      },
    });
    // the twins against the project's reference scan (B, C unpacked to (b, n, l))
    const Bm = new Float32Array(batch * ns * len), Cm = new Float32Array(batch * ns * len);
    for (let bb = 0; bb < batch; bb++) {
      for (let t = 0; t < len; t++) {
        for (let s = 0; s < ns; s++) {
          Bm[(bb * ns + s) * len + t] = xdbl[(bb * len + t) * R + r + s];
          Cm[(bb * ns + s) * len + t] = xdbl[(bb * len + t) * R + r + ns + s];
        }
      }
    }
    const ref = { ...inputs, B: Bm, C: Cm };
    const dims = { batch, dInner: dim, dState: ns, length: len };
    const y = new Float32Array(n), last = new Float32Array(batch * dim * ns);
    scanRef.scanForward(ref, dims, true, y, last);
    assert.ok(relL2(fwd.y, y) < 1e-6 && relL2(fwd.last, last) < 1e-6, "twin forward vs reference");
    const g = scanRef.scanBackward(ref, dims, true, inputs.dy, undefined);
    for (
      const [mine, theirs] of [["du", "u"], ["ddelta", "delta"], ["dz", "z"], ["dA", "A"], ["dD", "D"], [
        "dDeltaBias",
        "deltaBias",
      ]] as const
    ) {
      assert.ok(
        relL2(bwd[mine], g[theirs]) < 1e-6,
        `twin ${mine} vs reference: ${relL2(bwd[mine], g[theirs])}`,
      );
    }
    for (let bb = 0; bb < batch; bb++) {
      for (let t = 0; t < len; t++) {
        for (let s = 0; s < ns; s++) {
          const o = (bb * len + t) * R + r;
          assert.ok(
            Math.abs(bwd.dbc[o + s] - g.B[(bb * ns + s) * len + t]) <
              1e-5 * (1 + Math.abs(g.B[(bb * ns + s) * len + t])),
          );
          assert.ok(
            Math.abs(bwd.dbc[o + ns + s] - g.C[(bb * ns + s) * len + t]) <
              1e-5 * (1 + Math.abs(g.C[(bb * ns + s) * len + t])),
          );
        }
        for (let j = 0; j < r; j++) {
          const o = (bb * len + t) * R + j;
          assert.equal(bwd.dbc[o], inputs.dbc[o], "dt columns untouched");
        }
      }
    }
  }
});

Deno.test("engine kernels: cross-entropy with its gradient in place (targets offset too); negExp, mulInPlace, copy, fill", async () => {
  const batch = 2, len = 13, V = 40, stride = len + 1;
  const ids = Int32Array.from({ length: batch * stride }, () => rng.int(V));
  for (const [rows, rowOffset] of [[batch * len, 0], [9, 11]]) {
    const p = { rows, rowOffset, V, len, stride, scale: 1 / (batch * len) };
    const out = await check(`crossEntropy ${JSON.stringify(p)}`, {
      inputs: { logits: normal(rows * V, 3), ids, loss: new Float32Array(batch * len) },
      outputs: { logits: 1e-5, loss: 1e-5 },
      run: (ops, b) => ops.crossEntropy(p, { logits: b.logits, ids: b.ids, loss: b.loss }),
    });
    // each row's gradient sums to zero (softmax minus one-hot)
    for (let i = 0; i < rows; i++) {
      const s = out.logits.subarray(i * V, (i + 1) * V).reduce((a, x) => a + x, 0);
      assert.ok(Math.abs(s) < 1e-6, `row ${i} sums to ${s}`);
    }
  }
  // targets offset within each sequence (PerceiverAR's latents: the last 8 of 13 positions) equal the plain
  // case on ids rearranged so that those targets come first
  {
    const lat = 8, off = len - lat, rows = batch * lat;
    const shifted = new Int32Array(batch * (lat + 1));
    for (let bb = 0; bb < batch; bb++) {
      for (let t = 0; t <= lat; t++) shifted[bb * (lat + 1) + t] = ids[bb * stride + off + t];
    }
    const logits = normal(rows * V, 3);
    const p = { rows, rowOffset: 0, V, len: lat, stride, targetOffset: off, scale: 1 / rows };
    const got = await check(`crossEntropy ${JSON.stringify(p)}`, {
      inputs: { logits: logits.slice(), ids, loss: new Float32Array(rows) },
      outputs: { logits: 1e-5, loss: 1e-5 },
      run: (ops, b) => ops.crossEntropy(p, { logits: b.logits, ids: b.ids, loss: b.loss }),
    });
    const plain = { rows, rowOffset: 0, V, len: lat, stride: lat + 1, scale: 1 / rows };
    const want = await check("crossEntropy, ids rearranged", {
      inputs: { logits: logits.slice(), ids: shifted, loss: new Float32Array(rows) },
      outputs: { loss: 1e-5 },
      run: (ops, b) => ops.crossEntropy(plain, { logits: b.logits, ids: b.ids, loss: b.loss }),
    });
    assert.deepEqual([...got.loss], [...want.loss], "offset targets");
  }
  const n = 1000;
  await check("negExp", {
    inputs: { x: normal(n), y: new Float32Array(n) },
    outputs: { y: 1e-6 },
    run: (ops, b) => ops.negExp({ count: n }, { x: b.x, y: b.y }),
  });
  await check("mulInPlace", {
    inputs: { x: normal(n), y: normal(n) },
    outputs: { x: 1e-7 },
    run: (ops, b) => ops.mulInPlace({ count: n }, { x: b.x, y: b.y }),
  });
  await check("copy", {
    inputs: { src: normal(n), dst: normal(n) },
    outputs: { dst: 0 },
    run: (ops, b) => ops.copy({ count: 300, srcOffset: 17, dstOffset: 411 }, { src: b.src, dst: b.dst }),
  });
  const src = normal(n), dst = normal(n);
  const added = await check("copy, accumulated", {
    inputs: { src, dst: dst.slice() },
    outputs: { dst: 0 },
    run: (ops, b) =>
      ops.copy({ count: 300, srcOffset: 17, dstOffset: 411, accumulate: true }, { src: b.src, dst: b.dst }),
  });
  const sum = dst.map((v, i) => i >= 411 && i < 711 ? Math.fround(v + src[i - 411 + 17]) : v);
  assert.deepEqual([...added.dst], [...sum], "dst += src over the range only");
  const filled = await check("fill", {
    inputs: { x: normal(n) },
    outputs: { x: 0 },
    run: (ops, b) => ops.fill({ count: 700, value: 0 }, { x: b.x }),
  });
  assert.ok(filled.x.subarray(0, 700).every((v) => v === 0) && filled.x.subarray(700).every((v) => v !== 0));
});

Deno.test("engine kernels: optimizer (sums of squares, finalize with clipping and the halted flag, AdamW with a no-decay range)", async () => {
  const count = 5000, parts = 7;
  const grad = normal(count, 0.3);
  const hyper = new Float32Array(HYPER.SIZE);
  hyper[HYPER.LR] = 0.01;
  hyper[HYPER.BC1] = 1 - 0.9 ** 3;
  hyper[HYPER.BC2] = 1 - 0.95 ** 3;
  hyper[HYPER.DECAY] = 1 - 0.01 * 0.1;
  hyper[HYPER.SLOT] = 2;
  for (const [clip, bad] of [[1, false], [0, false], [100, false], [1, true]] as const) {
    const g = Float32Array.from(grad);
    if (bad) g[1234] = NaN;
    const inputs = {
      grad: g,
      partials: new Float32Array(parts + 3),
      loss: uniform(77, 1, 5),
      hyper,
      state: new Float32Array(STATE.SIZE),
      history: new Float32Array(16),
      param: normal(count),
      m: normal(count, 0.01),
      v: uniform(count, 0, 0.01),
    };
    const out = await check(`optimizer clip ${clip} nan ${bad}`, {
      inputs,
      outputs: bad
        ? { param: 0, m: 0, v: 0 } // halted: nothing changes
        : { partials: 1e-5, state: 1e-5, history: 1e-5, param: 1e-6, m: 1e-6, v: 1e-6 },
      run: (ops, b) => {
        ops.sumSquares({ count, parts, partOffset: 3 }, { x: b.grad, partials: b.partials });
        ops.finalizeStep({ parts: parts + 3, rows: 77, clip }, {
          partials: b.partials,
          loss: b.loss,
          hyper: b.hyper,
          state: b.state,
          history: b.history,
        });
        ops.adamw({ count, decayEnd: 3001, beta1: 0.9, beta2: 0.95, eps: 1e-8 }, {
          param: b.param,
          grad: b.grad,
          m: b.m,
          v: b.v,
          hyper: b.hyper,
          state: b.state,
        });
      },
    });
    // the norm, scale and history slot as defined
    const norm = Math.sqrt(grad.reduce((s, x) => s + x * x, 0));
    if (!bad) {
      assert.ok(Math.abs(out.state[STATE.NORM] - norm) < 1e-4 * norm);
      const scale = clip > 0 && norm > clip ? clip / norm : 1;
      assert.ok(Math.abs(out.state[STATE.SCALE] - scale) < 1e-5);
      assert.ok(Math.abs(out.history[8 + 1] - norm) < 1e-4 * norm && out.history[8 + 2] === 0);
    } else {
      assert.equal(out.state[STATE.HALTED], 1);
      assert.equal(out.history[8 + 2], 1);
      assert.deepEqual(out.param, inputs.param, "a halted step changes no parameter");
    }
  }
});

Deno.test("engine kernels: decoding steps (conv window, SSM step with dt_proj fused, residual + norm + GEMV, argmax), odd sizes", async () => {
  for (const [batch, ch, k, bias] of [[3, 7, 4, true], [1, 13, 3, false]] as const) {
    const p = { batch, ch, k, bias, xStride: 2 * ch + 1 };
    await check(`convStep ${JSON.stringify(p)}`, {
      inputs: {
        x: normal(batch * p.xStride),
        window: normal(batch * ch * k),
        w: normal(ch * k),
        bias: normal(ch),
        y: new Float32Array(batch * ch),
      },
      outputs: { window: 0, y: 1e-5 },
      run: (ops, b) =>
        ops.convStep(p, { x: b.x, window: b.window, w: b.w, bias: bias ? b.bias : undefined, y: b.y }),
    });
  }
  // ns 16 and 8: a lane per state (several workgroups, rank above and below the lanes), ns 6 a thread per channel
  for (const [batch, dim, ns, rank] of [[3, 5, 16, 3], [1, 50, 8, 40], [2, 9, 6, 1]]) {
    const row = rank + 2 * ns;
    const p = { batch, dim, ns, softplus: true, row, rank, zStride: 2 * dim, zOffset: dim };
    await check(`ssmStep ${JSON.stringify(p)}`, {
      inputs: {
        u: normal(batch * dim),
        dtW: normal(dim * rank),
        deltaBias: uniform(dim, -3, 0),
        A: uniform(dim * ns, -8, -0.1),
        xdbl: normal(batch * row),
        D: normal(dim),
        z: normal(batch * 2 * dim),
        h: normal(batch * dim * ns),
        y: new Float32Array(batch * dim),
      },
      outputs: { h: 1e-5, y: 1e-5 },
      run: (ops, b) =>
        ops.ssmStep(p, {
          u: b.u,
          dtW: b.dtW,
          deltaBias: b.deltaBias,
          A: b.A,
          xdbl: b.xdbl,
          D: b.D,
          z: b.z,
          h: b.h,
          y: b.y,
        }),
    });
  }
  // a pass's walks over len positions of one sequence, snapshots of the state before and after each:
  // the SSM with lanes per state (ns 16, 8 positions: the dt and y reductions of every position at once) and
  // with a thread per channel (ns 6); the conv window
  for (const [len, dim, ns, rank] of [[8, 50, 16, 40], [3, 9, 16, 3], [5, 7, 6, 2]]) {
    const row = rank + 2 * ns;
    const p = { len, dim, ns, softplus: true, row, rank, zStride: 2 * dim, zOffset: dim };
    await check(`ssmScan ${JSON.stringify(p)}`, {
      inputs: {
        u: normal(len * dim),
        dtW: normal(dim * rank),
        deltaBias: uniform(dim, -3, 0),
        A: uniform(dim * ns, -8, -0.1),
        xdbl: normal(len * row),
        D: normal(dim),
        z: normal(len * 2 * dim),
        h: normal(dim * ns),
        snaps: new Float32Array((len + 1) * dim * ns),
        y: new Float32Array(len * dim),
      },
      outputs: { h: 1e-5, y: 1e-5, snaps: 1e-5 },
      run: (ops, b) =>
        ops.ssmScan(p, { ...b, u: b.u, dtW: b.dtW, A: b.A, xdbl: b.xdbl, h: b.h, snaps: b.snaps, y: b.y }),
    });
  }
  {
    const len = 5, ch = 11, k = 4, p = { len, ch, k, bias: true, xStride: 2 * ch };
    await check(`convScan ${JSON.stringify(p)}`, {
      inputs: {
        x: normal(len * 2 * ch),
        window: normal(ch * k),
        snaps: new Float32Array((len + 1) * ch * k),
        w: normal(ch * k),
        bias: normal(ch),
        y: new Float32Array(len * ch),
      },
      outputs: { window: 1e-6, snaps: 1e-6, y: 1e-5 },
      run: (ops, b) =>
        ops.convScan(p, { x: b.x, window: b.window, snaps: b.snaps, w: b.w, bias: b.bias, y: b.y }),
    });
  }
  // d 45: scalar weight loads; d 48: vectors of four; 1 row and 3; d 3200: the unrolled loop runs (k past
  // lanes x (unroll - 1) vectors) before the remainder
  for (const [rows, d] of [[3, 45], [1, 48], [3, 48], [2, 3200]] as const) {
    const p = { rows, d, N: 37, eps: 1e-5 };
    await check(`normGemv ${JSON.stringify(p)}`, {
      inputs: {
        x: normal(rows * d),
        w: uniform(d, 0.5, 1.5),
        W: normal(37 * d),
        c: new Float32Array(rows * 37),
      },
      outputs: { c: 1e-5 },
      run: (ops, b) => ops.normGemv(p, { x: b.x, w: b.w, W: b.W, c: b.c }),
    });
  }
  // in_proj with the conv in its epilogue: a batch's step (3 sequences) and a pass (5 positions, snapshots);
  // with the norm folded in, over vectors of four (K 44) and scalars (K 45)
  const convCases = [
    [3, false, true, undefined, 44],
    [5, true, false, undefined, 44],
    [1, false, false, undefined, 44],
    [3, false, true, { eps: 1e-5 }, 44],
    [5, true, false, { eps: 1e-5 }, 45],
    [1, false, false, { eps: 1e-5 }, 44],
    [2, false, true, { eps: 1e-5 }, 3200],
  ] as const;
  for (const [rows, pass, bias, norm, K] of convCases) {
    const p = { rows, K, ch: 9, k: 4, bias, pass, ...(norm ? { norm } : {}) };
    await check(`gemvConv ${JSON.stringify(p)}`, {
      inputs: {
        a: normal(rows * K),
        gain: uniform(K, 0.5, 1.5),
        W: normal(18 * K),
        c: new Float32Array(rows * 18),
        window: normal((pass ? 1 : rows) * 9 * 4),
        w: normal(9 * 4),
        bias: normal(9),
        u: new Float32Array(rows * 9),
        snaps: new Float32Array((rows + 1) * 9 * 4),
      },
      outputs: {
        c: 1e-5,
        window: 1e-5,
        u: 1e-5,
        ...(pass ? { snaps: 1e-5 } : {}),
      },
      run: (ops, b) =>
        ops.gemvConv(p, {
          a: b.a,
          W: b.W,
          c: b.c,
          ...(norm ? { gain: b.gain } : {}),
          window: b.window,
          w: b.w,
          bias: bias ? b.bias : undefined,
          u: b.u,
          snaps: pass ? b.snaps : undefined,
        }),
    });
  }
  // argmax: the first maximum of each row's real vocabulary (padding columns ignored), into two places
  const V = 40, vocab = 37, rows = 3;
  const logits = normal(rows * V);
  logits[1 * V + 5] = logits[1 * V + 20] = 9; // a tie: the first wins
  logits[2 * V + 38] = 99; // a padding column: not a token
  const ids = new Int32Array(3 * 64);
  const run = async <B>(be: Backend<B>) => {
    const l = be.f32(logits.length, "logits"), i = be.i32(ids.length, "ids");
    be.write(l, logits);
    await be.submit([
      be.record((ops) =>
        ops.argmax({ rows, V, vocab, outOffset: 64, alsoOffset: 128 }, { logits: l, ids: i })
      ),
    ]);
    return new Int32Array((await be.read(i, 0, ids.length)).buffer);
  };
  const want = Array.from({ length: rows }, (_, r) => {
    const row = Array.from(logits.subarray(r * V, r * V + vocab));
    return row.indexOf(Math.max(...row));
  });
  assert.equal(want[1], 5);
  for (const [who, be] of [["js", js], ["webgpu", gpu]] as const) {
    if (!be) continue;
    const got = await run(be as Backend<unknown>);
    assert.deepEqual([...got.subarray(64, 67)], want, `${who}: argmax`);
    assert.deepEqual([...got.subarray(128, 131)], want, `${who}: argmax, second place`);
  }
});
