/**
 * The baseline families against independent PyTorch references (lib/torch/baselines.py, fixtures
 * from tests/reference/make_baseline_fixtures.py): for each family, with order-1 random weights (sharp
 * attention) and with weights trained in PyTorch, the model built from the fixture's config and weights
 * must give the reference's logits, loss (`nextTokenLoss`) and the gradient of every parameter.
 * MAMBABYTE_REFERENCE_ERRORS=1 prints the measured errors.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { family } from "../lib/models/mod.ts";
import { disposeModel, nextTokenLoss } from "../lib/models/lm.ts";
import { loadFixture, relL2T, TEST_BACKENDS, useBackend } from "./helpers.ts";

const BASELINES = new URL("./fixtures/baselines/", import.meta.url).pathname;
const KINDS = ["transformer", "transformer_subword", "megabyte", "perceiver_ar"];
const VARIANTS = ["random", "trained"];
const TOL = { logits: 1e-4, loss: 1e-5, grad: 1e-3 };

for (const backend of TEST_BACKENDS) {
  for (const kind of KINDS) {
    for (const variant of VARIANTS) {
      const name = `${kind}-${variant}`;
      Deno.test(`${kind} (${variant} weights) on ${backend}: logits, loss and every gradient match PyTorch`, async () => {
        await useBackend(backend);
        const meta = JSON.parse(await Deno.readTextFile(`${BASELINES}${name}.json`));
        const fx = await loadFixture(`../baselines/${name}.safetensors`); // helpers read from fixtures/reference/
        const f = family(kind);
        const config = f.parseConfig(meta.config, `${name}.json config`);
        assert.deepEqual(config, meta.config, "the fixture's config must be complete (no defaults filled)");
        const values = new Map<string, Float32Array>();
        for (const p of meta.parameters as string[]) values.set(p, (await fx.get(p)!.data()) as Float32Array);
        const model = f.build(config, values); // fails on a missing, unexpected or mis-sized parameter

        const ids = fx.get("input_ids")!; // (b, l+1)
        const [b, l1] = ids.shape;
        const inputs = tf.slice(ids, [0, 0], [b, l1 - 1]);
        const logits = model.logits(inputs);
        const errLogits = await relL2T(logits, fx.get("logits")!);

        const names = [...model.params.keys()];
        const vars = names.map((n) => model.params.get(n)!);
        const { value, grads } = tf.variableGrads(() => nextTokenLoss(model, ids), vars);
        const loss = (await value.data())[0];
        const errLoss = Math.abs(loss - meta.loss) / Math.abs(meta.loss);
        const errGrads = new Map<string, number>();
        for (const [i, n] of names.entries()) {
          const g = grads[vars[i].name]; // undefined when the loss does not depend on the parameter
          errGrads.set(n, g ? await relL2T(g, fx.get(`grad.${n}`)!) : Infinity);
        }
        tf.dispose([inputs, logits, value, ...Object.values(grads), ...fx.values()]);
        disposeModel(model);

        const [worst, errGrad] = [...errGrads].reduce((a, e) => (e[1] > a[1] ? e : a));
        if (Deno.env.get("MAMBABYTE_REFERENCE_ERRORS")) {
          console.log(
            `${name} ${backend}: logits ${errLogits.toExponential(2)} loss ${errLoss.toExponential(2)} ` +
              `grad ${errGrad.toExponential(2)} (${worst})`,
          );
        }
        assert.ok(errLogits < TOL.logits, `${name} on ${backend}: logits rel L2 err ${errLogits}`);
        assert.ok(errLoss < TOL.loss, `${name} on ${backend}: loss ${loss} vs reference ${meta.loss}`);
        for (const [n, err] of errGrads) {
          const what = err === Infinity ? "is missing (parameter unused)" : `rel L2 err ${err}`;
          assert.ok(err < TOL.grad, `${name} on ${backend}: grad of ${n} ${what}`);
        }
      });
    }
  }
}
