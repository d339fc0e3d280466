/**
 * Times the length-extrapolation sweep of the byte baselines on the native engine (lib/eval/
 * engine_scorer.ts): the byte Transformer (or MegaByte) at a preset's width and depth, trained context C,
 * every multiple 1x .. 64x C of the extrapolation (lib/eval/extrapolation.ts, mode whole, each length
 * scoring the same tokens of the text), and prints one JSON line per model: seconds per length, the
 * sweep's total, and each length's status. Random parameters (seed 0): the figure is speed, not quality
 * (the stage, lib/runs/stages.ts extrapolation, scores trained runs the same way).
 *
 *   deno run -A --cached-only lib/bench/extrapolation_engine.ts [--model transformer|megabyte]
 *     [--shape D,L] [--context C] [--multiples 1,2,4,...] [--max-tokens N] [--text PATH] [--out FILE]
 *     --shape        d_model,n_layer (default 512,8: the gpu preset)
 *     --context      the trained context C in bytes (default 2048)
 *     --max-tokens   tokens scored per length (default 524288: the gpu scale's)
 *     --text         a file or a directory of them (default data/corpora/books/test, else the README)
 *     --backend      webgpu (default) or wasm, js (the CPU engine; small shapes)
 *     --allow-software  accept a software WebGPU adapter
 *     --out          also append the JSON line, with provenance, to FILE
 */
import { initBackend } from "../backend.ts";
import "../models/mod.ts";
import { baselineConfig } from "../models/mod.ts";
import { createModel } from "../models/registry.ts";
import { disposeModel, type ModelKind } from "../models/lm.ts";
import { EngineScorer } from "../eval/engine_scorer.ts";
import { evaluateExtrapolation, EXTRAPOLATION_MULTIPLES } from "../eval/extrapolation.ts";
import { readSplit } from "../data/bytes.ts";
import { benchProvenance } from "../results/store.ts";
import type { EngineBackendName } from "../engine/backend.ts";

function parse(args: string[]) {
  const o = {
    model: "transformer" as ModelKind,
    shape: [512, 8],
    context: 2048,
    multiples: [...EXTRAPOLATION_MULTIPLES] as number[],
    maxTokens: 1 << 19,
    text: undefined as string | undefined,
    backend: "webgpu" as EngineBackendName,
    allowSoftware: false,
    out: undefined as string | undefined,
  };
  const ints = (flag: string, v: string | undefined) => {
    const xs = (v ?? "").split(",").map(Number);
    if (!xs.length || !xs.every((x) => Number.isInteger(x) && x >= 1)) {
      throw new Error(`${flag}: expected positive integers separated by commas, got "${v}"`);
    }
    return xs;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i], v = args[i + 1];
    if (a === "--model") o.model = v as ModelKind, i++;
    else if (a === "--shape") o.shape = ints(a, v), i++;
    else if (a === "--context") o.context = ints(a, v)[0], i++;
    else if (a === "--multiples") o.multiples = ints(a, v), i++;
    else if (a === "--max-tokens") o.maxTokens = ints(a, v)[0], i++;
    else if (a === "--text") o.text = v, i++;
    else if (a === "--backend") o.backend = v as EngineBackendName, i++;
    else if (a === "--allow-software") o.allowSoftware = true;
    else if (a === "--out") o.out = v, i++;
    else if (a === "--help" || a === "-h") {
      console.log(new TextDecoder().decode(Deno.readFileSync(new URL(import.meta.url))).split("*/")[0]);
      Deno.exit(0);
    } else throw new Error(`unknown option "${a}" (--help lists them)`);
  }
  if (!["transformer", "megabyte"].includes(o.model)) throw new Error(`--model: transformer or megabyte`);
  if (o.shape.length !== 2) throw new Error(`--shape: d_model,n_layer (e.g. 512,8)`);
  if (!["webgpu", "wasm", "js"].includes(o.backend)) throw new Error(`--backend: webgpu, wasm or js`);
  return o;
}

async function text(path?: string): Promise<{ bytes: Uint8Array; source: string }> {
  for (const p of path ? [path] : ["data/corpora/books/test", "README.md"]) {
    try {
      return { bytes: await readSplit(p), source: p };
    } catch (e) {
      if (path) throw new Error(`--text ${path}: ${(e as Error).message}`);
    }
  }
  throw new Error("no text: give --text");
}

if (import.meta.main) {
  let o: ReturnType<typeof parse>;
  try {
    o = parse(Deno.args);
  } catch (e) {
    console.error(`lib/bench/extrapolation_engine.ts: ${(e as Error).message}`);
    Deno.exit(2);
  }
  await initBackend({ backend: "cpu", quiet: true }); // TF.js only initialises the parameters
  const { bytes, source } = await text(o.text);
  const [d, L] = o.shape;
  const model = createModel(o.model, baselineConfig(o.model, { d_model: d, n_layer: L }), 0);
  const scorer = await EngineScorer.create(model, { backend: o.backend, allowSoftwareGpu: o.allowSoftware });
  const t0 = performance.now();
  try {
    const results = await evaluateExtrapolation(model, bytes, {
      trainedContext: o.context,
      multiples: o.multiples,
      modes: ["whole"],
      maxTokens: o.maxTokens,
      scorer,
      onProgress: (l) => console.error(`${o.model} ${d}x${L}: ${l}`),
    });
    const record = {
      bench: "extrapolation_engine",
      model: o.model,
      config: model.config,
      trained_context: o.context,
      text: source,
      text_bytes: bytes.length,
      max_tokens: o.maxTokens,
      scored_by: scorer.name,
      total_s: Math.round((performance.now() - t0) / 10) / 100,
      lengths: results.map((r) => ({
        multiple: r.multiple,
        eval_length: r.eval_length,
        status: r.status,
        ...(r.reason ? { reason: r.reason } : {}),
        sequences: r.sequences,
        tokens: r.tokens,
        wall_s: r.wall_s,
        tokens_per_s: r.wall_s ? Math.round(r.tokens / r.wall_s) : null,
      })),
    };
    const line = JSON.stringify({
      ...record,
      provenance: benchProvenance(`engine ${o.backend}`, scorer.name),
    });
    console.log(line);
    if (o.out) await Deno.writeTextFile(o.out, line + "\n", { append: true });
  } finally {
    scorer.destroy();
    disposeModel(model);
  }
}
