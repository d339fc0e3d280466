/**
 * Generating from the byte Transformer and MegaByte on the native engine: their KV caches on the device
 * (lib/engine/transformer_decode.ts, megabyte_decode.ts), on WebGPU where TF.js runs there and on the
 * CPU engine (WebAssembly kernels, else the JS twins) elsewhere. The prompt is read one byte per
 * submission; greedy bytes are chosen on the device, 64 per submission; sampled bytes are drawn on the host
 * from each step's logits (pickToken's rule, the same seeded generator as MambaByte's sampling).
 */
import * as tf from "@tensorflow/tfjs";
import type { LanguageModel } from "../models/lm.ts";
import { readParameters } from "../models/lm.ts";
import { asTransformer } from "../models/transformer.ts";
import { asMegaByte } from "../models/megabyte.ts";
import { TransformerDecoder } from "../engine/transformer_decode.ts";
import { MegaByteDecoder } from "../engine/megabyte_decode.ts";
import { nativeBackendFor } from "../train/steps.ts";
import { pickToken, type SamplingOptions } from "./sample.ts";
import { Rng } from "../util/rng.ts";

/** The byte models with attention that `streamAttentionBytes` decodes. */
export const ATTENTION_DECODED_KINDS = ["transformer", "megabyte"];

/**
 * `maxBytes` bytes after `prompt` (at least one byte) from a byte Transformer or MegaByte, each passed to
 * `onByte` as it comes (greedy: per submission of 64).
 */
export async function streamAttentionBytes(
  model: LanguageModel,
  prompt: ArrayLike<number>,
  maxBytes: number,
  opts: SamplingOptions,
  onByte: (b: number) => void | Promise<void>,
): Promise<number> {
  if (!ATTENTION_DECODED_KINDS.includes(model.kind)) {
    throw new Error(`streamAttentionBytes: ${ATTENTION_DECODED_KINDS.join(" or ")} (got ${model.kind})`);
  }
  if (prompt.length === 0) throw new Error("generate: the prompt must hold at least one byte");
  const K = 64;
  const common = {
    params: await readParameters(model),
    maxLen: prompt.length + maxBytes,
    backend: nativeBackendFor(tf.getBackend()) ?? ("js" as const), // beside TF.js: webgpu, else the CPU engine
    allowSoftwareGpu: true, // TF.js already runs on this adapter
    stepsPerSubmit: K,
  };
  const dec = model.kind === "megabyte"
    ? await MegaByteDecoder.create({ ...common, config: asMegaByte(model).config })
    : await TransformerDecoder.create({ ...common, config: asTransformer(model).config });
  try {
    for (let i = 0; i < prompt.length - 1; i++) await dec.step(prompt[i]);
    let last = prompt[prompt.length - 1];
    if (opts.greedy) {
      // runs of 8 submissions, each run's bytes streamed before the next is queued
      for (let done = 0; done < maxBytes;) {
        const n = Math.min(8 * K, maxBytes - done);
        const ids = await dec.greedy(last, n);
        for (const b of ids) await onByte(b);
        last = ids[n - 1];
        done += n;
      }
      return maxBytes;
    }
    const rng = new Rng(opts.seed ?? 0);
    let logits = await dec.step(last);
    for (let i = 0; i < maxBytes; i++) {
      const b = pickToken(logits, opts, rng);
      await onByte(b);
      if (i < maxBytes - 1) logits = await dec.step(b);
    }
    return maxBytes;
  } finally {
    dec.destroy();
  }
}
