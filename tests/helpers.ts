/** Shared test helpers: backends to test on, fixture loading, error norms. */
import * as tf from "@tensorflow/tfjs";
import { type BackendName, initBackend } from "../lib/backend.ts";
import { readSafetensors } from "../lib/io/safetensors.ts";
import type { Rng } from "../lib/util/rng.ts";
export { waitUntil, withDeadline } from "./deadline.ts";

export const FIXTURES = new URL("./fixtures/reference/", import.meta.url).pathname;

/** Backends every numeric test runs on. webgpu runs on Mesa's software Vulkan in CI (MAMBABYTE_TEST_BACKENDS overrides). */
export const TEST_BACKENDS: BackendName[] = (Deno.env.get("MAMBABYTE_TEST_BACKENDS") ?? "cpu,wasm,webgpu")
  .split(",").filter(Boolean) as BackendName[];

export async function useBackend(name: BackendName): Promise<void> {
  await initBackend({ backend: name, quiet: true });
  if (tf.getBackend() !== name) throw new Error(`could not start backend ${name}`);
}

/** Loads a fixture file as float32/int32 tensors on the current backend. */
export async function loadFixture(file: string): Promise<Map<string, tf.Tensor>> {
  const st = await readSafetensors(FIXTURES + file);
  const out = new Map<string, tf.Tensor>();
  for (const [name, t] of st.tensors) {
    out.set(
      name,
      tf.tensor(t.data as Float32Array | Int32Array, t.shape, t.dtype === "I32" ? "int32" : "float32"),
    );
  }
  return out;
}

/** ||a - b|| / ||b|| */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

export async function relL2T(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  if (a.shape.join() !== b.shape.join()) throw new Error(`shape mismatch: [${a.shape}] vs [${b.shape}]`);
  return relL2(await a.data() as Float32Array, await b.data() as Float32Array);
}

/** A checkpoint directory (config.json + model.safetensors) holding the reference tiny model. */
export async function tinyModelDir(): Promise<string> {
  const reference = JSON.parse(await Deno.readTextFile(FIXTURES + "mambabyte-tiny-public.json"));
  const dir = await Deno.makeTempDir({ prefix: "mambabyte-tiny-" });
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(reference.config));
  await Deno.copyFile(FIXTURES + "mambabyte-tiny-public.model.safetensors", `${dir}/model.safetensors`);
  return dir;
}

/**
 * The trained reference MambaByte (mambabyte-trained-public: d_model 64, 2 layers, 1500 steps on GPL v3 text):
 * a checkpoint directory, its prompt (64 bytes of input_ids) and mamba_ssm's 64 greedy bytes after it (real
 * text: 19 distinct bytes).
 */
export async function trainedModelDir(): Promise<{ dir: string; prompt: Uint8Array; greedy: number[] }> {
  const stem = "mambabyte-trained-public";
  const reference = JSON.parse(await Deno.readTextFile(`${FIXTURES}${stem}.json`));
  const ids = (await readSafetensors(`${FIXTURES}${stem}.expected.safetensors`)).tensors.get("input_ids")!;
  const dir = await Deno.makeTempDir({ prefix: "mambabyte-trained-" });
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(reference.config));
  await Deno.copyFile(`${FIXTURES}${stem}.model.safetensors`, `${dir}/model.safetensors`);
  const prompt = Uint8Array.from(ids.data as Int32Array).subarray(0, reference.prompt_bytes);
  return { dir, prompt, greedy: reference.greedy_continuation };
}

/** Random scan inputs of a given shape, in the ranges Mamba produces. */
export function randomScanInputs(rng: Rng, b: number, d: number, n: number, l: number) {
  const t = (shape: number[], make: (k: number) => Float32Array) =>
    tf.tensor(make(shape.reduce((x, y) => x * y)), shape);
  return {
    u: t([b, d, l], (k) => rng.normalArray(k)),
    delta: t([b, d, l], (k) => rng.uniformArray(k, -4, 1)),
    A: t([d, n], (k) => rng.uniformArray(k, -8, -0.1)),
    B: t([b, n, l], (k) => rng.normalArray(k)),
    C: t([b, n, l], (k) => rng.normalArray(k)),
    D: t([d], (k) => rng.normalArray(k)),
    z: t([b, d, l], (k) => rng.normalArray(k)),
    deltaBias: t([d], (k) => rng.uniformArray(k, -3, 0)),
    h0: t([b, d, n], (k) => rng.normalArray(k)),
  };
}

/**
 * Runs the command line as a user would (a subprocess on the wasm backend): exit code, raw stdout (bytes:
 * generate writes raw bytes there) and stderr as text.
 */
export async function runCli(
  ...args: string[]
): Promise<{ code: number; stdout: Uint8Array; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../lib/cli.ts", import.meta.url).pathname, ...args],
    env: { MAMBABYTE_BACKEND: "wasm", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: out.stdout, stderr: new TextDecoder().decode(out.stderr) };
}
