/**
 * The tiny reference MambaByte of tests/fixtures/reference (mamba_ssm's MambaLMHeadModel, d_model 32,
 * 2 layers, initialised as mamba_ssm does and NOT trained; see tests/fixtures/README.md), as a checkpoint
 * directory in mamba_ssm's layout. Notebooks use it at `smoke` scale when no trained model or released
 * checkpoint is at hand: it exercises the whole path (loading, scoring, generation, the evaluations) with
 * numbers that carry no meaning about language modelling.
 */
import { readSafetensors } from "../io/safetensors.ts";
import { REFERENCE_FIXTURES } from "../paths.ts";

export { REFERENCE_FIXTURES };
const STEM = "mambabyte-tiny-public";

/** A temporary directory with config.json + model.safetensors of the reference model (the caller may remove it). */
export async function referenceCheckpoint(): Promise<string> {
  const meta = JSON.parse(await Deno.readTextFile(`${REFERENCE_FIXTURES}${STEM}.json`));
  const dir = await Deno.makeTempDir({ prefix: "mambabyte-reference-" });
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(meta.config, null, 2) + "\n");
  await Deno.copyFile(`${REFERENCE_FIXTURES}${STEM}.model.safetensors`, `${dir}/model.safetensors`);
  return dir;
}

/** What mamba_ssm computed with the reference model: its input text, loss, and greedy continuation. */
export async function referenceExpected(): Promise<
  { input: Uint8Array; prompt: Uint8Array; lossNats: number; greedy: Uint8Array }
> {
  const meta = JSON.parse(await Deno.readTextFile(`${REFERENCE_FIXTURES}${STEM}.json`));
  const st = await readSafetensors(`${REFERENCE_FIXTURES}${STEM}.expected.safetensors`);
  const ids = st.tensors.get("input_ids");
  if (!ids) throw new Error(`${REFERENCE_FIXTURES}${STEM}.expected.safetensors: no input_ids`);
  const input = Uint8Array.from(ids.data as Int32Array);
  return {
    input,
    prompt: input.slice(0, meta.prompt_bytes),
    lossNats: meta.loss_next_byte_ce_nats,
    greedy: Uint8Array.from(meta.greedy_continuation as number[]),
  };
}
