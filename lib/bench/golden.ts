/**
 * Records how closely this implementation reproduces mamba_ssm's reference outputs (tests/fixtures):
 * relative L2 errors of the scan values and gradients and of the tiny MambaByte's logits, loss and
 * parameter gradients, per backend and scan implementation. The tests assert the bounds; this writes the
 * measured errors to data/results/golden.jsonl so notes and reports can cite them.
 *
 *   deno run -A lib/bench/golden.ts [--backends cpu,wasm,webgpu] [--out DIR]
 */
import { type BackendName, initBackend, tf } from "../backend.ts";
import { availableScanImpls, selectiveScan } from "../ssm/mod.ts";
import { readSafetensors } from "../io/safetensors.ts";
import { forward } from "../models/mamba.ts";
import { loadPretrained } from "../models/pretrained.ts";
import { appendRecord } from "../results/store.ts";
import { withScanImpl } from "../models/registry.ts";
import { nextTokenLoss } from "../models/lm.ts";
import { REFERENCE_FIXTURES, RESULTS_DIR } from "../paths.ts";
import { helpOrUnknown } from "../util/usage.ts";

const USAGE = `deno run -A lib/bench/golden.ts [options]   (errors against mamba_ssm's reference outputs)
  --backends LIST  comma-separated backends (default cpu,wasm,webgpu)
  --out DIR        where golden.jsonl goes (default data/results)`;
helpOrUnknown(Deno.args, USAGE, "lib/bench/golden.ts");

const fixtures = REFERENCE_FIXTURES;
const arg = (name: string, fallback: string) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : fallback;
};
const backends = arg("--backends", "cpu,wasm,webgpu").split(",") as BackendName[];
const outDir = arg("--out", RESULTS_DIR);

function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

async function load(file: string): Promise<Map<string, tf.Tensor>> {
  const st = await readSafetensors(fixtures + file);
  return new Map(
    [...st.tensors].map((
      [k, t],
    ) => [k, tf.tensor(t.data as Float32Array, t.shape, t.dtype === "I32" ? "int32" : "float32")]),
  );
}

const GRADS = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias"];
const reference = JSON.parse(await Deno.readTextFile(fixtures + "mambabyte-tiny-public.json"));

for (const backend of backends) {
  await initBackend({ backend, quiet: true });
  for (const file of ["scan-public.safetensors", "scan-public-long.safetensors"]) {
    const t = await load(file);
    for (const impl of availableScanImpls()) {
      const inputs = GRADS.map((n) => t.get(n)!);
      const f = (...x: tf.Tensor[]) =>
        tf.sum(
          tf.mul(
            selectiveScan(x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], { deltaSoftplus: true, impl }).y,
            t.get("gy")!,
          ),
        ) as tf.Scalar;
      const { grads } = tf.valueAndGrads(f)(inputs);
      const { y, lastState } = selectiveScan(
        inputs[0],
        inputs[1],
        inputs[2],
        inputs[3],
        inputs[4],
        inputs[5],
        inputs[6],
        inputs[7],
        { deltaSoftplus: true, impl, returnLastState: true },
      );
      const errors: Record<string, number> = {
        y: relL2(await y.data(), await t.get("y")!.data()),
        last_state: relL2(await lastState!.data(), await t.get("last_state")!.data()),
      };
      for (const [i, n] of GRADS.entries()) {
        errors[`grad_${n}`] = relL2(await grads[i].data(), await t.get(`grad_${n}`)!.data());
      }
      await appendRecord("golden", { check: "scan", fixture: file, impl, errors }, outDir);
      console.log(
        `${backend} ${impl} ${file}: max value err ${
          Math.max(errors.y, errors.last_state).toExponential(2)
        }, ` +
          `max grad err ${Math.max(...GRADS.map((n) => errors[`grad_${n}`])).toExponential(2)}`,
      );
    }
  }
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(reference.config));
  await Deno.copyFile(fixtures + "mambabyte-tiny-public.model.safetensors", `${dir}/model.safetensors`);
  const model = await loadPretrained(dir);
  const exp = await load("mambabyte-tiny-public.expected.safetensors");
  for (const impl of availableScanImpls()) {
    const ids = exp.get("input_ids")!;
    const { logits } = forward(model, ids, { impl });
    const names = [...model.params.keys()];
    const vars = names.map((n) => model.params.get(n)!);
    const { value, grads } = tf.variableGrads(() => nextTokenLoss(withScanImpl(model, impl), ids), vars);
    const loss = (await value.data())[0];
    let worst = 0, worstName = "";
    for (const [i, n] of names.entries()) {
      const e = relL2(await grads[vars[i].name].data(), await exp.get(`grad.${n}`)!.data());
      if (e > worst) [worst, worstName] = [e, n];
    }
    const errors = {
      logits: relL2(await logits.data(), await exp.get("logits")!.data()),
      loss: Math.abs(loss - reference.loss_next_byte_ce_nats) / reference.loss_next_byte_ce_nats,
      worst_parameter_grad: worst,
    };
    await appendRecord(
      "golden",
      { check: "mambabyte-tiny", impl, errors, worst_parameter: worstName },
      outDir,
    );
    console.log(
      `${backend} ${impl} tiny MambaByte: logits err ${errors.logits.toExponential(2)}, loss err ` +
        `${errors.loss.toExponential(2)}, worst grad err ${worst.toExponential(2)} (${worstName})`,
    );
    tf.dispose([logits, value, ...Object.values(grads)]);
  }
  await Deno.remove(dir, { recursive: true });
}
