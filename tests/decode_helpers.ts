/**
 * Tiny Mamba models for the decoding tests (tests/decode_test.ts, tests/engine_speculative_test.ts): a random
 * one with a peaked untied head, and "echo" models that mostly predict their input again, so that an echo
 * drafter and an echo verifier agree often and the accept paths run.
 */
import * as tf from "@tensorflow/tfjs";
import { parseMambaConfig } from "../lib/models/mamba_config.ts";
import { initMambaLM, type MambaLM } from "../lib/models/mamba.ts";

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
