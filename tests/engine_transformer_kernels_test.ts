/**
 * The engine's LayerNorm, rotary embedding and GELU kernels (lib/kernels/{js,webgpu}/transformer.ts): the
 * twins against TF.js's own layers (lib/nn: layerNorm, rope, gelu) and their gradients by tf.grads, then
 * every tested engine backend against the twins, at odd sizes (a row wider than a workgroup's threads,
 * several rows per backward block, heads inside packed q | k | v rows, GELU far into its tails).
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { ropeTables } from "../lib/kernels/js/transformer.ts";
import { rope as tfRope } from "../lib/nn/attention.ts";
import { gelu as tfGelu, layerNorm as tfLayerNorm } from "../lib/nn/layers.ts";
import { Rng } from "../lib/util/rng.ts";
import { relL2, useBackend } from "./helpers.ts";
import { TFJS_REFERENCE_BACKEND } from "./engine_helpers.ts";
import { check } from "./kernel_check.ts";

const rng = new Rng(11);
const close = async (what: string, got: Float32Array, ref: tf.Tensor, tol: number) => {
  const err = relL2(got, await ref.data() as Float32Array);
  assert.ok(err < tol, `${what}: rel err ${err} (twin vs TF.js)`);
};

Deno.test("engine LayerNorm: forward and backward equal TF.js's layerNorm and its gradients", async () => {
  await useBackend(TFJS_REFERENCE_BACKEND);
  // d 45: one column a thread; d 300: several; 2,100 rows: two rows a backward block
  for (const [rows, d] of [[37, 45], [5, 300], [2100, 45]]) {
    const p = { rows, d, eps: 1e-5 };
    const x = rng.normalArray(rows * d, 2), w = rng.uniformArray(d, 0.5, 1.5), bias = rng.normalArray(d, 1);
    const dy = rng.normalArray(rows * d, 1), dx0 = rng.normalArray(rows * d, 1);
    const want = await check(`layerNorm ${rows}x${d}`, {
      inputs: {
        x,
        w,
        bias,
        y: new Float32Array(rows * d),
        mean: new Float32Array(rows),
        rstd: new Float32Array(rows),
        dy,
        dx: dx0.slice(),
        dw: new Float32Array(d),
        db: new Float32Array(d),
      },
      outputs: { y: 1e-5, mean: 1e-5, rstd: 1e-5, dx: 1e-5, dw: 1e-5, db: 1e-5 },
      run: (ops, b) => {
        ops.layerNorm(p, { x: b.x, w: b.w, bias: b.bias, y: b.y, mean: b.mean, rstd: b.rstd });
        ops.layerNormBackward({ ...p, accumulate: true }, {
          x: b.x,
          w: b.w,
          mean: b.mean,
          rstd: b.rstd,
          dy: b.dy,
          dx: b.dx,
          dw: b.dw,
          db: b.db,
        });
      },
    });
    const [xt, wt, bt, dyt] = [
      tf.tensor(x, [rows, d]),
      tf.tensor(w),
      tf.tensor(bias),
      tf.tensor(dy, [rows, d]),
    ];
    const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tfLayerNorm(a, b, c, 1e-5);
    const y = f(xt, wt, bt);
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(f(a, b, c), dyt)))([
      xt,
      wt,
      bt,
    ]);
    await close(`layerNorm ${rows}x${d} y`, want.y, y, 1e-5);
    // dx was added to what the buffer held (the residual stream's gradient)
    await close(`layerNorm ${rows}x${d} dx`, want.dx, tf.add(g[0], tf.tensor(dx0, [rows, d])), 1e-5);
    await close(`layerNorm ${rows}x${d} dw`, want.dw, g[1], 1e-4);
    await close(`layerNorm ${rows}x${d} db`, want.db, g[2], 1e-4);
    tf.dispose([xt, wt, bt, dyt, y, ...g]);
  }
});

Deno.test("engine rotary embedding: equals TF.js's rope at an offset position; the inverse is its gradient", async () => {
  await useBackend(TFJS_REFERENCE_BACKEND);
  const batch = 2, len = 9, heads = 3, hd = 6, d = heads * hd, pos0 = 5, theta = 10000;
  // k: the middle third of packed q | k | v rows, one float of padding a row
  const stride = 3 * d + 1, offset = d;
  const p = { batch, len, heads, hd, stride, offset, inverse: false };
  const x = rng.normalArray(batch * len * stride, 1), dy = rng.normalArray(batch * len * stride, 1);
  const { cos, sin } = ropeTables(len, hd, theta, pos0);
  const fwd = await check("rope", {
    inputs: { x: x.slice(), cos, sin },
    outputs: { x: 1e-6 },
    run: (ops, b) => ops.rope(p, { x: b.x, cos: b.cos, sin: b.sin }),
  });
  const back = await check("rope inverse", {
    inputs: { x: dy.slice(), cos, sin },
    outputs: { x: 1e-6 },
    run: (ops, b) => ops.rope({ ...p, inverse: true }, { x: b.x, cos: b.cos, sin: b.sin }),
  });
  // (batch, heads, len, hd) views of the rotated region; everything else untouched
  const heads4 = (buf: Float32Array) => {
    const out = new Float32Array(batch * heads * len * hd);
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < heads; h++) {
        for (let t = 0; t < len; t++) {
          for (let c = 0; c < hd; c++) {
            out[((b * heads + h) * len + t) * hd + c] = buf[(b * len + t) * stride + offset + h * hd + c];
          }
        }
      }
    }
    return tf.tensor(out, [batch, heads, len, hd]);
  };
  const [xt, dyt] = [heads4(x), heads4(dy)];
  const ref = tfRope(xt, pos0, theta);
  const grad = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tfRope(a, pos0, theta), dyt)))(xt);
  const got = heads4(fwd.x), gotBack = heads4(back.x);
  await close("rope", await got.data() as Float32Array, ref, 1e-6);
  await close("rope inverse (the gradient)", await gotBack.data() as Float32Array, grad, 1e-6);
  const outside = (buf: Float32Array, orig: Float32Array) =>
    buf.every((v, i) => ((i % stride) >= offset && (i % stride) < offset + d) || v === orig[i]);
  assert.ok(outside(fwd.x, x) && outside(back.x, dy), "rope wrote outside its heads");
  tf.dispose([xt, dyt, ref, grad, got, gotBack]);
});

Deno.test("engine GELU: forward and backward equal TF.js's gelu and its gradient, tails included (scalars and vec4s)", async () => {
  await useBackend(TFJS_REFERENCE_BACKEND);
  // 1001 elements: a thread each; 1004: four a thread (vec4), the kernels' usual case
  for (const count of [1001, 1004]) {
    const x = rng.normalArray(count, 3);
    x.set([-60, -20, -5, 0, 5, 20, 60], 0);
    const dy = rng.normalArray(count, 1);
    const want = await check(`gelu ${count}`, {
      inputs: { x, y: new Float32Array(count), d: dy.slice() },
      outputs: { y: 1e-6, d: 1e-6 },
      run: (ops, b) => {
        ops.gelu({ count }, { x: b.x, y: b.y });
        ops.geluBackward({ count }, { x: b.x, d: b.d });
      },
    });
    const [xt, dyt] = [tf.tensor(x), tf.tensor(dy)];
    const y = tfGelu(xt), g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tfGelu(a), dyt)))(xt);
    await close(`gelu ${count}`, want.y, y, 1e-6);
    await close(`gelu backward ${count}`, want.d, g, 1e-5);
    assert.ok(want.y.every(Number.isFinite) && want.d.every(Number.isFinite));
    tf.dispose([xt, dyt, y, g]);
  }
});
