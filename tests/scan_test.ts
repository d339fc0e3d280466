/**
 * The selective scan: every implementation against mamba_ssm's reference outputs (values and all eight
 * gradients), whole and split in two with the second half run from the first half's last state (the
 * gradient with respect to the initial state composed through the split), and against each other on random
 * shapes with and without an initial state.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { availableScanImpls, type ScanImpl, selectiveScan } from "../lib/ssm/mod.ts";
import { Rng } from "../lib/util/rng.ts";
import { loadFixture, randomScanInputs, relL2T, TEST_BACKENDS, useBackend } from "./helpers.ts";

const GRAD_NAMES = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias"] as const;

/** sum(y * gy) and its gradients with respect to the eight inputs (what the fixtures hold). */
function scanWithGrads(impl: ScanImpl, t: Map<string, tf.Tensor>, h0?: tf.Tensor) {
  const gy = t.get("gy")!;
  const f = (
    u: tf.Tensor,
    delta: tf.Tensor,
    A: tf.Tensor,
    B: tf.Tensor,
    C: tf.Tensor,
    D: tf.Tensor,
    z: tf.Tensor,
    db: tf.Tensor,
  ) => {
    const { y } = selectiveScan(u, delta, A, B, C, D, z, db, { deltaSoftplus: true, impl, initialState: h0 });
    return tf.sum(tf.mul(y, gy));
  };
  const inputs = GRAD_NAMES.map((n) => t.get(n)!);
  const { grads } = tf.valueAndGrads(f as (...x: tf.Tensor[]) => tf.Scalar)(inputs);
  const { y, lastState } = selectiveScan(
    ...(inputs as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]),
    { deltaSoftplus: true, returnLastState: true, impl, initialState: h0 },
  );
  return { y, lastState: lastState!, grads };
}

for (const backend of TEST_BACKENDS) {
  for (const file of ["scan-public.safetensors", "scan-public-long.safetensors"]) {
    Deno.test(`scan golden ${file} on ${backend}: values and all eight gradients match mamba_ssm`, async () => {
      await useBackend(backend);
      const t = await loadFixture(file);
      const worst: Record<string, number> = {};
      for (const impl of availableScanImpls()) {
        const { y, lastState, grads } = scanWithGrads(impl, t);
        const errY = await relL2T(y, t.get("y")!);
        const errS = await relL2T(lastState, t.get("last_state")!);
        assert.ok(errY < 1e-5, `${impl}: y rel err ${errY}`);
        assert.ok(errS < 1e-5, `${impl}: last_state rel err ${errS}`);
        worst.y = Math.max(worst.y ?? 0, errY, errS);
        for (const [i, name] of GRAD_NAMES.entries()) {
          const err = await relL2T(grads[i], t.get(`grad_${name}`)!);
          worst.grads = Math.max(worst.grads ?? 0, err);
          assert.ok(err < 1e-4, `${impl}: grad_${name} rel err ${err}`);
        }
        tf.dispose([y, lastState, ...grads]);
      }
      console.log(`${file} on ${backend}: worst rel. L2 errors ${JSON.stringify(worst)}`);
      tf.dispose([...t.values()]);
    });
  }
}

// Shapes: length 1, odd, non-power-of-two, > 1000; (b, d, n, l)
const SHAPES: [number, number, number, number][] = [
  [1, 3, 2, 1],
  [2, 5, 3, 7],
  [1, 4, 4, 33],
  [3, 2, 5, 100],
  [1, 2, 3, 1025],
];

for (const backend of TEST_BACKENDS) {
  Deno.test(`scan implementations agree with the sequential recurrence on random shapes (${backend})`, async () => {
    await useBackend(backend);
    const rng = new Rng(1234);
    // the software GPU (lavapipe) runs thousands of tiny ops slowly: the long case runs on the CPU backends
    for (const [b, d, n, l] of SHAPES.filter(([, , , l]) => backend !== "webgpu" || l < 1000)) {
      for (const withState of [false, true]) {
        const x = randomScanInputs(rng, b, d, n, l);
        const h0 = withState ? x.h0 : undefined;
        // gradients of a random linear functional of y and of the last state, wrt every input incl. h0
        const gy = tf.tensor(rng.normalArray(b * d * l), [b, d, l]);
        const gs = tf.tensor(rng.normalArray(b * d * n), [b, d, n]);
        const run = (impl: ScanImpl) => {
          const f = (
            u: tf.Tensor,
            delta: tf.Tensor,
            A: tf.Tensor,
            B: tf.Tensor,
            C: tf.Tensor,
            h: tf.Tensor,
          ) => {
            const r = selectiveScan(u, delta, A, B, C, x.D, x.z, x.deltaBias, {
              deltaSoftplus: true,
              impl,
              initialState: withState ? h : undefined,
              returnLastState: true,
              chunkSize: 8,
            });
            return tf.add(tf.sum(tf.mul(r.y, gy)), tf.sum(tf.mul(r.lastState!, gs)));
          };
          // h0 is differentiated only when it is used (tf.grads rejects a disconnected input)
          const { value, grads } = tf.valueAndGrads(f as (...t: tf.Tensor[]) => tf.Scalar)(
            withState ? [x.u, x.delta, x.A, x.B, x.C, x.h0] : [x.u, x.delta, x.A, x.B, x.C],
          );
          const { y, lastState } = selectiveScan(x.u, x.delta, x.A, x.B, x.C, x.D, x.z, x.deltaBias, {
            deltaSoftplus: true,
            impl,
            initialState: h0,
            returnLastState: true,
            chunkSize: 8,
          });
          return { value, grads, y, lastState: lastState! };
        };
        const ref = run("sequential");
        for (const impl of availableScanImpls().filter((i) => i !== "sequential")) {
          const got = run(impl);
          const what = `${impl} (b=${b}, d=${d}, n=${n}, l=${l}, initial state ${withState})`;
          assert.ok(await relL2T(got.y, ref.y) < 1e-4, `${what}: y`);
          assert.ok(await relL2T(got.lastState, ref.lastState) < 1e-4, `${what}: last state`);
          const names = ["u", "delta", "A", "B", "C", "h0"];
          for (let i = 0; i < ref.grads.length; i++) {
            const err = await relL2T(got.grads[i], ref.grads[i]);
            assert.ok(err < 1e-3, `${what}: grad ${names[i]} rel err ${err}`);
          }
          tf.dispose([got.value, ...got.grads, got.y, got.lastState]);
        }
        tf.dispose([ref.value, ...ref.grads, ref.y, ref.lastState, gy, gs, ...Object.values(x)]);
      }
    }
  });

  Deno.test(`scan from a state: scan-public-long split in two, the second half run from the first's last state, values and gradients (through the initial state) match mamba_ssm (${backend})`, async () => {
    await useBackend(backend);
    const t = await loadFixture("scan-public-long.safetensors"); // (1, 4, 16 states, 300 steps)
    const L = t.get("u")!.shape[2]!;
    const timeInputs = ["u", "delta", "B", "C", "z"] as const; // split along the length
    const part = (x: tf.Tensor, s: number, len: number) => tf.slice(x, [0, 0, s], [-1, -1, len]);
    const worst: Record<string, number> = {};
    const check = async (name: string, got: tf.Tensor, want: tf.Tensor, tol: number, what: string) => {
      const err = await relL2T(got, want);
      worst[name] = Math.max(worst[name] ?? 0, err);
      assert.ok(err < tol, `${what}: ${name} rel err ${err}`);
    };
    // chunk boundaries and not (chunkSize 16), halves of one step at either end (fewer on the slow software GPU)
    for (const split of backend === "webgpu" ? [1, 77, L - 1] : [1, 16, 77, 150, L - 1]) {
      const halves = [[0, split], [split, L - split]] as const;
      const inputs = halves.map(([s, len]) => {
        const m = new Map<string, tf.Tensor>();
        for (const k of timeInputs) m.set(k, part(t.get(k)!, s, len));
        m.set("gy", part(t.get("gy")!, s, len));
        return m;
      });
      for (const impl of availableScanImpls()) {
        const what = `${impl}, split at ${split}`;
        const opts = { deltaSoftplus: true, impl, returnLastState: true, chunkSize: 16 };
        /** sum(y * gy) + sum(last * gLast) of one half from h0, with its gradients (h0's when given). */
        const half = (x: Map<string, tf.Tensor>, h0: tf.Tensor | undefined, gLast: tf.Tensor | undefined) => {
          const f = (...a: tf.Tensor[]) => {
            const [u, delta, A, B, C, D, z, db, h] = a;
            const r = selectiveScan(u, delta, A, B, C, D, z, db, { ...opts, initialState: h });
            let loss = tf.sum(tf.mul(r.y, x.get("gy")!));
            if (gLast) loss = tf.add(loss, tf.sum(tf.mul(r.lastState!, gLast)));
            return loss as tf.Scalar;
          };
          const args = [
            x.get("u")!,
            x.get("delta")!,
            t.get("A")!,
            x.get("B")!,
            x.get("C")!,
            t.get("D")!,
            x.get("z")!,
            t.get("delta_bias")!,
            ...(h0 ? [h0] : []),
          ];
          const { grads } = tf.valueAndGrads(f)(args);
          const r = selectiveScan(
            ...(args.slice(0, 8) as [
              tf.Tensor,
              tf.Tensor,
              tf.Tensor,
              tf.Tensor,
              tf.Tensor,
              tf.Tensor,
              tf.Tensor,
              tf.Tensor,
            ]),
            { ...opts, initialState: h0 },
          );
          return { y: r.y, last: r.lastState!, grads };
        };
        // values: the first half from zero, the second from its last state
        const first = half(inputs[0], undefined, undefined);
        // the second half's gradients, dL/dh0 included; the first half then receives dL/dh0 through its
        // last state, which is what the second half started from
        const second = half(inputs[1], first.last, undefined);
        const dh0 = second.grads[8];
        const firstG = half(inputs[0], undefined, dh0);
        await check("y", tf.concat([first.y, second.y], 2), t.get("y")!, 1e-5, what);
        await check("last_state", second.last, t.get("last_state")!, 1e-5, what);
        for (const [i, name] of GRAD_NAMES.entries()) {
          const [g1, g2] = [firstG.grads[i], second.grads[i]];
          const whole = ["u", "delta", "B", "C", "z"].includes(name)
            ? tf.concat([g1, g2], 2)
            : tf.add(g1, g2);
          await check(`grad_${name}`, whole, t.get(`grad_${name}`)!, 1e-4, what);
          whole.dispose();
        }
        tf.dispose([first.y, first.last, ...first.grads, second.y, second.last, ...second.grads]);
        tf.dispose([...firstG.grads, firstG.y, firstG.last]);
      }
      for (const m of inputs) tf.dispose([...m.values()]);
    }
    console.log(`${backend}: worst rel. L2 errors over splits and implementations: ${JSON.stringify(worst)}`);
    tf.dispose([...t.values()]);
  });
}

Deno.test("scan: bad shapes fail with a message naming the argument", () => {
  const u = tf.zeros([1, 4, 5]);
  assert.throws(
    () => selectiveScan(u, tf.zeros([1, 4, 6]), tf.zeros([4, 2]), tf.zeros([1, 2, 5]), tf.zeros([1, 2, 5])),
    /delta must have u's shape/,
  );
  assert.throws(
    () => selectiveScan(u, u, tf.zeros([3, 2]), tf.zeros([1, 2, 5]), tf.zeros([1, 2, 5])),
    /A must be \(d_inner, d_state\)/,
  );
  assert.throws(
    () =>
      selectiveScan(
        u,
        u,
        tf.zeros([4, 2]),
        tf.zeros([1, 2, 5]),
        tf.zeros([1, 2, 5]),
        undefined,
        undefined,
        undefined,
        { initialState: tf.zeros([1, 4, 3]) },
      ),
    /initialState must be/,
  );
});
