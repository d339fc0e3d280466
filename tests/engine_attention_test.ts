/**
 * The engine's causal attention (lib/kernels/{js,webgpu}/attention.ts) against TF.js's causalAttention
 * (lib/nn/attention.ts: scores, mask and softmax as whole tensors, an independent implementation) and its
 * gradients by tf.grads, then every tested engine backend against the twins: self-attention at odd lengths,
 * sliding windows, PerceiverAR's cross-attention (queries at the end of a longer key set), a decoding-like
 * tail, and a head of 64 over more than one tile. q, k, v and o sit in padded, packed rows (strides and
 * offsets), as a model's fused products leave them.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { type AttentionParams, checkAttention } from "../lib/kernels/js/attention.ts";
import { causalAttention } from "../lib/nn/attention.ts";
import { Rng } from "../lib/util/rng.ts";
import { relL2, useBackend } from "./helpers.ts";
import { TFJS_REFERENCE_BACKEND } from "./engine_helpers.ts";
import { check, gpu } from "./kernel_check.ts";
import {
  attentionTiles,
  setAttentionImpl,
  setAttentionRows,
  setAttentionStorageCap,
  SHORT_ROWS,
  tiledAttentionFits,
} from "../lib/kernels/webgpu/attention.ts";

type Shape = Pick<AttentionParams, "batch" | "heads" | "lq" | "lk" | "hd" | "qPos0" | "kPos0" | "window">;

const CASES: [string, Shape][] = [
  ["self, odd length", { batch: 2, heads: 2, lq: 37, lk: 37, hd: 8, qPos0: 0, kPos0: 0, window: 0 }],
  ["self, window 5", { batch: 2, heads: 2, lq: 37, lk: 37, hd: 8, qPos0: 0, kPos0: 0, window: 5 }],
  ["cross, queries at the end", { batch: 1, heads: 3, lq: 7, lk: 29, hd: 6, qPos0: 22, kPos0: 0, window: 0 }],
  ["cross, window 4", { batch: 1, heads: 3, lq: 7, lk: 29, hd: 6, qPos0: 22, kPos0: 0, window: 4 }],
  ["decoding tail", { batch: 2, heads: 1, lq: 3, lk: 40, hd: 10, qPos0: 37, kPos0: 0, window: 0 }],
  ["head 64, two tiles", { batch: 1, heads: 2, lq: 70, lk: 70, hd: 64, qPos0: 0, kPos0: 0, window: 33 }],
  // heads the tiled WebGPU kernels take (32 rows a workgroup; key tiles of 32, 16 in the backward)
  ["head 32, self, odd length", {
    batch: 2,
    heads: 2,
    lq: 77,
    lk: 77,
    hd: 32,
    qPos0: 0,
    kPos0: 0,
    window: 0,
  }],
  ["head 64, window 21", { batch: 1, heads: 3, lq: 83, lk: 83, hd: 64, qPos0: 0, kPos0: 0, window: 21 }],
  ["head 64, cross", { batch: 2, heads: 1, lq: 19, lk: 75, hd: 64, qPos0: 56, kPos0: 0, window: 0 }],
  // short sequences (the short kernels): MegaByte's local model (patch + 1 rows, one big head), a window
  ["short, head 84", { batch: 3, heads: 1, lq: 9, lk: 9, hd: 84, qPos0: 0, kPos0: 0, window: 0 }],
  ["short, head 7, window 3", { batch: 2, heads: 2, lq: 32, lk: 32, hd: 7, qPos0: 0, kPos0: 0, window: 3 }],
  ["head 32, cross, window", { batch: 1, heads: 2, lq: 40, lk: 90, hd: 32, qPos0: 50, kPos0: 0, window: 45 }],
];

/** Packed layout: q rows (B, lq) of heads x hd + 3 padding at offset 2; k | v rows (B, lk, 2 d + 1); o rows of d + 1. */
function layout(s: Shape): AttentionParams {
  const d = s.heads * s.hd;
  return {
    ...s,
    qStride: d + 3,
    qOff: 2,
    kStride: 2 * d + 1,
    kOff: 0,
    vStride: 2 * d + 1,
    vOff: d,
    oStride: d + 1,
    oOff: 1,
  };
}

/** (B, heads, L, hd) from a packed buffer, and back. */
function unpack(p: AttentionParams, buf: Float32Array, L: number, stride: number, off: number): Float32Array {
  const out = new Float32Array(p.batch * p.heads * L * p.hd);
  for (let b = 0; b < p.batch; b++) {
    for (let h = 0; h < p.heads; h++) {
      for (let t = 0; t < L; t++) {
        for (let c = 0; c < p.hd; c++) {
          out[((b * p.heads + h) * L + t) * p.hd + c] = buf[(b * L + t) * stride + off + h * p.hd + c];
        }
      }
    }
  }
  return out;
}

/** The tiled kernels from now on, at `rows` a workgroup, planned for `storage` bytes (or the device's). */
function setTiled(rows: 32 | 64, storage?: number): void {
  setAttentionImpl("tiled");
  setAttentionRows(rows);
  setAttentionStorageCap(storage);
}

Deno.test("engine attention: forward and gradients equal TF.js's causalAttention; every backend equals the twins", async () => {
  await useBackend(TFJS_REFERENCE_BACKEND);
  const rng = new Rng(7);
  for (const [name, shape] of CASES) {
    const p = layout(shape);
    const q = rng.normalArray(p.batch * p.lq * p.qStride, 1);
    const kv = rng.normalArray(p.batch * p.lk * p.kStride, 1);
    const dO = rng.normalArray(p.batch * p.lq * p.oStride, 1);
    const inputs = {
      q,
      k: kv,
      o: new Float32Array(p.batch * p.lq * p.oStride),
      lse: new Float32Array(p.batch * p.heads * p.lq),
      dO,
      dq: new Float32Array(q.length),
      dk: new Float32Array(kv.length),
      dv: new Float32Array(kv.length),
    };
    // the forward, then the backward from its o and lse, on each backend against the twins
    // WebGPU runs both kernel sets where the tiled one serves the head (it must, at heads of 32 and 64)
    const storage = gpu?.rt.limits.maxComputeWorkgroupStorageSize ?? 0;
    const tiled = gpu && tiledAttentionFits(p, storage, 32);
    if (gpu) assert.equal(tiled, p.hd === 32 || p.hd === 64, `${name}: the tiled kernels' reach`);
    // 64 rows a workgroup: heads of 32 in 32 KB (Mesa's lavapipe), heads of 64 only in 48 KB (the H200)
    const tiled64 = gpu && tiledAttentionFits(p, storage, 64);
    if (gpu && p.hd === 32) assert.ok(tiled64, `${name}: 64 rows a workgroup serve heads of 32`);
    const short = p.lq <= SHORT_ROWS && p.lk <= SHORT_ROWS;
    let want: Record<string, Float32Array>;
    try {
      want = await check(`attention ${name}`, {
        inputs,
        outputs: { o: 1e-5, lse: 1e-5, dq: 1e-4, dk: 1e-4, dv: 1e-4 },
        run: (ops, b) => {
          ops.attention(p, { q: b.q, k: b.k, v: b.k, o: b.o, lse: b.lse });
          // dk and dv are thirds of one buffer, as k and v are: written to separate ones here
          ops.attentionBackward(p, {
            q: b.q,
            k: b.k,
            v: b.k,
            o: b.o,
            lse: b.lse,
            dO: b.dO,
            dq: b.dq,
            dk: b.dk,
            dv: b.dv,
          });
        },
      }, {
        // short sequences: the short kernels (auto's choice) and the rows ones; longer: tiled where it fits
        gpuVariants: {
          ...(short ? { short: () => setAttentionImpl("short") } : {}),
          ...(tiled ? { tiled: () => setTiled(32) } : {}),
          ...(tiled64 ? { "tiled, 64 rows": () => setTiled(64) } : {}),
          // heads of 32 at 64 rows planned for 28 KB: dk and dv pass p and ds through one array in turn, as
          // heads of 64 do in 48 KB
          ...(tiled64 && p.hd === 32 ? { "tiled, 64 rows, 28 KB": () => setTiled(64, 28 * 1024) } : {}),
          rows: () => setAttentionImpl("rows"),
        },
      });
    } finally {
      setAttentionImpl("auto");
      setAttentionRows("auto");
      setAttentionStorageCap(undefined);
    }
    // TF.js: (B, heads, L, hd) tensors, the loss <o, dO> differentiated by tf.grads
    const shape4 = (L: number) => [p.batch, p.heads, L, p.hd] as [number, number, number, number];
    const [q4, k4, v4] = [
      tf.tensor(unpack(p, q, p.lq, p.qStride, p.qOff), shape4(p.lq)),
      tf.tensor(unpack(p, kv, p.lk, p.kStride, p.kOff), shape4(p.lk)),
      tf.tensor(unpack(p, kv, p.lk, p.vStride, p.vOff), shape4(p.lk)),
    ];
    const dO4 = tf.tensor(unpack(p, dO, p.lq, p.oStride, p.oOff), shape4(p.lq));
    const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
      causalAttention(a, b, c, p.qPos0, p.kPos0, p.window || undefined);
    const o4 = f(q4, k4, v4);
    const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(f(a, b, c), dO4)))([
      q4,
      k4,
      v4,
    ]);
    const close = async (what: string, got: Float32Array, ref: tf.Tensor, tol: number) => {
      const err = relL2(got, await ref.data() as Float32Array);
      assert.ok(err < tol, `${name}: ${what} rel err ${err} (twin vs TF.js)`);
    };
    await close("o", unpack(p, want.o, p.lq, p.oStride, p.oOff), o4, 1e-5);
    await close("dq", unpack(p, want.dq, p.lq, p.qStride, p.qOff), grads[0], 1e-4);
    await close("dk", unpack(p, want.dk, p.lk, p.kStride, p.kOff), grads[1], 1e-4);
    await close("dv", unpack(p, want.dv, p.lk, p.vStride, p.vOff), grads[2], 1e-4);
    // lse: log sum over the visible keys of exp(<q, k> / sqrt(hd)), from TF.js's scores
    const scores = tf.div(tf.matMul(q4, k4, false, true), Math.sqrt(p.hd)); // (B, heads, lq, lk)
    const mask = new Float32Array(p.lq * p.lk).fill(-Infinity);
    for (let i = 0; i < p.lq; i++) {
      for (let j = 0; j < p.lk; j++) {
        const qpos = p.qPos0 + i, kpos = p.kPos0 + j;
        if (kpos <= qpos && (!p.window || kpos > qpos - p.window)) mask[i * p.lk + j] = 0;
      }
    }
    await close("lse", want.lse, tf.logSumExp(tf.add(scores, tf.tensor(mask, [p.lq, p.lk])), 3), 1e-5);
    tf.dispose([q4, k4, v4, dO4, o4, ...grads, scores]);
  }
});

Deno.test("engine attention: the tiled kernels' tiles at 32 and 64 rows a workgroup, in 32 and 48 KB", () => {
  const KB = 1024;
  const tiles = (forward: number, dq: number, dkdv: number, rows: 32 | 64, one = false) => ({
    rows,
    forward,
    dq,
    dkdv,
    dkdvOneExchange: one,
  });
  // 32 rows: as measured (the H200 takes 32s; Mesa's 32 KB shorter tiles at a head of 64)
  assert.deepEqual(attentionTiles(32, 32 * KB, 32), tiles(32, 32, 32, 32));
  assert.deepEqual(attentionTiles(64, 32 * KB, 32), tiles(32, 16, 16, 32));
  assert.deepEqual(attentionTiles(64, 48 * KB, 32), tiles(32, 32, 32, 32));
  assert.deepEqual(attentionTiles(96, 48 * KB, 32), tiles(32, 16, 16, 32));
  // 64 rows: heads of 32 anywhere, heads of 64 in 48 KB with dk and dv's one exchange array
  assert.deepEqual(attentionTiles(32, 32 * KB, 64), tiles(32, 16, 16, 64));
  assert.deepEqual(attentionTiles(32, 48 * KB, 64), tiles(32, 32, 32, 64));
  assert.deepEqual(attentionTiles(32, 28 * KB, 64), tiles(32, 16, 16, 64, true));
  assert.deepEqual(attentionTiles(64, 48 * KB, 64), tiles(32, 16, 16, 64, true));
  assert.equal(attentionTiles(64, 32 * KB, 64), undefined);
  // auto: 64 rows where they fit, else 32
  assert.deepEqual(attentionTiles(64, 48 * KB, "auto"), tiles(32, 16, 16, 64, true));
  assert.deepEqual(attentionTiles(64, 32 * KB, "auto"), tiles(32, 16, 16, 32));
  assert.equal(attentionTiles(96, 48 * KB, 64), undefined);
});

Deno.test("engine attention: a query that sees no key is refused, naming it", () => {
  const p = layout({ batch: 1, heads: 1, lq: 4, lk: 8, hd: 4, qPos0: 0, kPos0: 2, window: 0 });
  assert.throws(
    () => checkAttention(p),
    /the query at position 0 sees no key \(keys at 2\.\.9, window none\)/,
  );
  const w = layout({ batch: 1, heads: 1, lq: 2, lk: 4, hd: 4, qPos0: 10, kPos0: 0, window: 3 });
  assert.throws(() => checkAttention(w), /the query at position 10 sees no key/);
});

Deno.test("engine attention: queries as the last rows of longer sequences (PerceiverAR's cross-attention)", async () => {
  await useBackend(TFJS_REFERENCE_BACKEND);
  const rng = new Rng(9);
  const batch = 2, heads = 2, hd = 6, l = 23, n = 5, d = heads * hd, stride = 3 * d;
  // one packed (b, l, 3d) q | k | v buffer; the queries are rows l-n .. l-1 of each sequence
  const p: AttentionParams = {
    batch,
    heads,
    lq: n,
    lk: l,
    hd,
    qPos0: l - n,
    kPos0: 0,
    window: 0,
    qStride: stride,
    kStride: stride,
    vStride: stride,
    oStride: d,
    qOff: (l - n) * stride,
    kOff: d,
    vOff: 2 * d,
    oOff: 0,
    qBatch: l * stride,
    kBatch: l * stride,
    vBatch: l * stride,
  };
  const qkv = rng.normalArray(batch * l * stride, 1), dO = rng.normalArray(batch * n * d, 1);
  const want = await check("attention, last rows as queries", {
    inputs: {
      qkv,
      o: new Float32Array(batch * n * d),
      lse: new Float32Array(batch * heads * n),
      dO,
      dqkv: new Float32Array(qkv.length),
    },
    outputs: { o: 1e-5, lse: 1e-5, dqkv: 1e-4 },
    run: (ops, b) => {
      ops.attention(p, { q: b.qkv, k: b.qkv, v: b.qkv, o: b.o, lse: b.lse });
      const g = { q: b.qkv, k: b.qkv, v: b.qkv, o: b.o, lse: b.lse, dO: b.dO };
      ops.attentionBackward(p, { ...g, dq: b.dqkv, dk: b.dqkv, dv: b.dqkv });
    },
  });
  // TF.js on (b, heads, rows, hd) tensors cut from the packed rows
  const cut = (buf: Float32Array, first: number, rows: number, off: number) => {
    const out = new Float32Array(batch * heads * rows * hd);
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < heads; h++) {
        for (let t = 0; t < rows; t++) {
          for (let c = 0; c < hd; c++) {
            out[((b * heads + h) * rows + t) * hd + c] = buf[(b * l + first + t) * stride + off + h * hd + c];
          }
        }
      }
    }
    return tf.tensor(out, [batch, heads, rows, hd]);
  };
  const [q4, k4, v4] = [cut(qkv, l - n, n, 0), cut(qkv, 0, l, d), cut(qkv, 0, l, 2 * d)];
  const oRows = new Float32Array(batch * heads * n * hd), dRows = new Float32Array(oRows.length);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let t = 0; t < n; t++) {
        for (let c = 0; c < hd; c++) {
          oRows[((b * heads + h) * n + t) * hd + c] = want.o[(b * n + t) * d + h * hd + c];
          dRows[((b * heads + h) * n + t) * hd + c] = dO[(b * n + t) * d + h * hd + c];
        }
      }
    }
  }
  const dO4 = tf.tensor(dRows, [batch, heads, n, hd]);
  const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => causalAttention(a, b, c, l - n, 0);
  const o4 = f(q4, k4, v4);
  const g = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(f(a, b, c), dO4)))([
    q4,
    k4,
    v4,
  ]);
  const err = async (got: tf.Tensor, ref: tf.Tensor) =>
    relL2(await got.data() as Float32Array, await ref.data() as Float32Array);
  assert.ok(relL2(oRows, await o4.data() as Float32Array) < 1e-5, "o vs TF.js");
  const [dq, dk, dv] = [cut(want.dqkv, l - n, n, 0), cut(want.dqkv, 0, l, d), cut(want.dqkv, 0, l, 2 * d)];
  for (const [what, got, ref] of [["dq", dq, g[0]], ["dk", dk, g[1]], ["dv", dv, g[2]]] as const) {
    const e = await err(got, ref);
    assert.ok(e < 1e-4, `${what} rel err ${e} vs TF.js`);
  }
  // the rows that are not queries get no dq (the kernel leaves them as they were)
  const untouched = cut(want.dqkv, 0, l - n, 0);
  assert.ok(untouched.dataSync().every((v) => v === 0), "dq of non-query rows");
  tf.dispose([q4, k4, v4, dO4, o4, ...g, dq, dk, dv, untouched]);
});
