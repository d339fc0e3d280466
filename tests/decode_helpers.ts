/**
 * Tiny Mamba models for the decoding tests (tests/decode_test.ts, tests/engine_speculative_test.ts): a random
 * one with a peaked untied head, and "echo" models that mostly predict their input again, so that an echo
 * drafter and an echo verifier agree often and the accept paths run; and the check of a CPU stepper against
 * mamba.ts `step` (TF.js), the independent reference of its steps.
 */
import * as tf from "@tensorflow/tfjs";
import { parseMambaConfig } from "../lib/models/mamba_config.ts";
import { disposeState, initMambaLM, type MambaLM, prefill, step } from "../lib/models/mamba.ts";
import { type MambaStepper, tensorsToHost } from "../lib/decode/stepper.ts";
import { relL2 } from "./helpers.ts";

const enc = new TextEncoder();
export const CORPUS = enc.encode(
  ("The quick brown fox jumps over the lazy dog. A stitch in time saves nine; the early bird catches the worm. " +
    "Über café naïve — résumé, déjà vu. Ça va? Ἀρχὴ ἥμισυ παντός. 東京は大きい都市です。 ").repeat(6),
);

/**
 * A random tiny Mamba with an untied, random N(0, 1) head: its logits are peaked (no near-ties) and its
 * greedy text varied (a tied random head mostly predicts the input byte again).
 */
export function tinyMamba(vocab: number, seed: number, d = 32, layers = 2): MambaLM {
  const cfg = parseMambaConfig({
    d_model: d,
    n_layer: layers,
    vocab_size: vocab,
    ssm_cfg: { d_state: 8 },
    tie_embeddings: false,
  }, "test");
  const m = initMambaLM(cfg, seed);
  const head = m.params.get("lm_head.weight")!;
  head.assign(tf.randomNormal(head.shape, 0, 1, "float32", seed));
  return m;
}

/** A tied random Mamba with the embedding scaled up: it mostly predicts its input again ("echo"), which
 * makes an echo drafter agree with an echo verifier often, exercising the accept paths. */
export function echoMamba(vocab: number, seed: number): MambaLM {
  const m = initMambaLM(
    parseMambaConfig({ d_model: 32, n_layer: 2, vocab_size: vocab, ssm_cfg: { d_state: 8 } }, "test"),
    seed,
  );
  const E = m.params.get("backbone.embedding.weight")!;
  E.assign(tf.tidy(() => tf.mul(E, 40)));
  return m;
}

/**
 * Reads `prompt` with mamba.ts `prefill`, then steps `js` (from that state, on the host) and mamba.ts
 * `step` through `ids`: after each id, the logits and every layer's SSM state and conv window must agree
 * within 1e-5 (relative L2). `what` names the case in a failure.
 */
export async function assertStepsMatchTf(
  m: MambaLM,
  js: MambaStepper,
  prompt: number[],
  ids: number[],
  what: string,
): Promise<void> {
  const input = tf.tensor([prompt], [1, prompt.length], "int32");
  const { logits, state } = prefill(m, input);
  logits.dispose();
  input.dispose();
  let host = await tensorsToHost(state);
  let tfState = state;
  const near = (a: Float32Array, b: Float32Array, which: string) => {
    const err = relL2(a, b);
    if (!(err < 1e-5)) throw new Error(`${what}: ${which} rel. error ${err}`);
  };
  try {
    for (const id of ids) {
      const one = tf.tensor([id], [1], "int32");
      const r = step(m, one, tfState);
      one.dispose();
      disposeState(tfState);
      tfState = r.state;
      const want = (await r.logits.data()) as Float32Array;
      r.logits.dispose();
      const got = js.stepSync(host, id);
      host = got.state;
      near(got.logits, want, `logits after id ${id}`);
      const wantHost = await tensorsToHost(tfState);
      for (let l = 0; l < wantHost.ssm.length; l++) {
        near(host.ssm[l], wantHost.ssm[l], `layer ${l} ssm state after id ${id}`);
        near(host.conv[l], wantHost.conv[l], `layer ${l} conv window after id ${id}`);
      }
    }
  } finally {
    disposeState(tfState);
  }
}
