/**
 * Speculative decoding on the native engine (lib/engine/speculative.ts), measured on the device.
 *
 * Costs (random weights; speed does not depend on them), per verifier/drafter pair of shapes: the
 * verifier's greedy bytes/s (64 steps per submission), one verifier step and one pass of 8 bytes, one
 * drafter step, and one whole round (m drafter steps, the pass, the accept, the roll-backs, a verifier step)
 * queued back to back with nothing read back. A round emits at most draftBytes + 1 bytes, so
 *   speed-up bound = (draftBytes + 1) x (greedy seconds per byte) / (seconds per round)
 * is the most speculative decoding can gain over greedy decoding at those shapes, every draft accepted.
 *
 * Trained models (--verifier DIR --drafter DIR --prompt-file F): greedy and speculative decoding of the same
 * bytes on the engine, bytes/s of each (the weights' upload excluded), acceptance, and whether the bytes are
 * identical (beta = 1).
 *
 *   deno run -A --cached-only lib/bench/speculative_engine.ts [--pair 1792,48,768,24,50280] [--tokens 3]
 *     [--verifier DIR --drafter DIR --prompt-file F --bytes N --beta 1,3] [--allow-software] [--out FILE]
 */
import { EngineSpeculative } from "../engine/speculative.ts";
import { MambaDecoder } from "../engine/decode.ts";
import { ByteBPE } from "../data/bpe.ts";
import { initParameters } from "../models/mamba.ts";
import { type MambaConfig, parseMambaConfig } from "../models/mamba_config.ts";
import { asMamba } from "../models/registry.ts";
import { readParameters } from "../models/lm.ts";
import { loadTrained } from "../runs/experiment.ts";
import { appendBenchLine } from "../results/store.ts";
import { Rng } from "../util/rng.ts";
import { flagValue, flagValues, helpOrUnknown } from "../util/usage.ts";
import { initBackend } from "../backend.ts";

const USAGE = `deno run -A lib/bench/speculative_engine.ts [options]   (speculative decoding on the engine)
  --pair DV,LV,DD,LD,VD   verifier d_model, layers; drafter d_model, layers, vocabulary (repeatable;
                          default 1792,48,768,24,50280: the paper's 972M verifier and 110M drafter)
  --tokens M              drafted tokens per round (default 3)
  --verifier DIR --drafter DIR --prompt-file F   also decode with trained models (mambabyte, mamba_subword)
  --bytes N               bytes decoded with the trained models (default 2048)
  --beta LIST             acceptance widths tried with the trained models (default 1,3)
  --allow-software        accept a software WebGPU adapter
  --out FILE              also append the lines, with provenance, to FILE`;
helpOrUnknown(Deno.args, USAGE, "lib/bench/speculative_engine.ts");

const all = (name: string) => flagValues(Deno.args, name);
const one = (name: string, fallback: string) => flagValue(Deno.args, name, fallback);
const list = (s: string) => s.split(",").map(Number);
const pairs = (all("--pair").length ? all("--pair") : ["1792,48,768,24,50280"]).map(list);
const m = Number(one("--tokens", "3"));
const out = all("--out").at(-1);
const allowSoftwareGpu = Deno.args.includes("--allow-software");
const say = (s: string) => console.error(`[speculative engine] ${s}`);
const round3 = (x: number) => Math.round(x * 1000) / 1000;

async function record(line: Record<string, unknown>, device: string) {
  console.log(JSON.stringify(line));
  if (out) await appendBenchLine(out, line, "engine webgpu", device);
}

/** Mean milliseconds of `run` over `n` calls queued back to back (one warm-up call first). */
async function queued(run: () => Promise<unknown>, finish: () => Promise<void>, n: number): Promise<number> {
  await run();
  await finish();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await run();
  await finish();
  return (performance.now() - t0) / n;
}

/**
 * A byte-level BPE of `vocab` ids whose tokens are 2 to 4 bytes long, merged at random (a stand-in for a
 * trained subword vocabulary: the round's cost depends on the vocabulary's size, not on its merges).
 */
function syntheticTokenizer(vocab: number): ByteBPE {
  const rng = new Rng(7), merges: [number, number][] = [];
  const pairsFirst = Math.min(vocab - 256, 8192);
  for (let i = 0; i < pairsFirst; i++) merges.push([rng.int(256), rng.int(256)]);
  while (256 + merges.length < vocab) merges.push([256 + rng.int(pairsFirst), rng.int(256)]);
  return new ByteBPE(merges);
}

for (const [dv, lv, dd, ld, vd] of pairs) {
  const verifier = parseMambaConfig({ d_model: dv, n_layer: lv, vocab_size: 256 }, "bench verifier");
  const drafter = parseMambaConfig({ d_model: dd, n_layer: ld, vocab_size: vd }, "bench drafter");
  say(`verifier d${dv} x ${lv}, drafter d${dd} x ${ld} (vocabulary ${vd}): random weights`);
  const vParams = initParameters(verifier, 0), dParams = initParameters(drafter, 1);
  const stepCosts = async (config: MambaConfig, params: Map<string, Float32Array>, pass: boolean) => {
    const dec = await MambaDecoder.create({ config, params, stepsPerSubmit: 64, allowSoftwareGpu });
    try {
      const finish = () => dec.backend.finish();
      const stepMs = await queued(() => dec.feed([65]), finish, 50);
      const passMs = pass
        ? await queued(() => dec.pass([65, 66, 67, 68, 69, 70, 71, 72], { read: false }), finish, 50)
        : 0;
      let greedyBytesPerS = 0;
      if (pass) {
        await dec.greedy([65], 128);
        const g0 = performance.now();
        await dec.greedy([65], 512);
        greedyBytesPerS = 512 / ((performance.now() - g0) / 1000);
      }
      return { stepMs, passMs, greedyBytesPerS, device: dec.backend.device };
    } finally {
      dec.destroy();
    }
  };
  const v = await stepCosts(verifier, vParams, true);
  const d = await stepCosts(drafter, dParams, false);
  const spec = await EngineSpeculative.create({
    verifier: { config: verifier, params: vParams },
    drafter: { config: drafter, params: dParams },
    tokenizer: syntheticTokenizer(vd),
    draftTokens: m,
    roundsPerSubmit: 16,
    allowSoftwareGpu,
  });
  let roundMs: number;
  try {
    await spec.decode(new TextEncoder().encode("The quick brown fox "), 64);
    const r0 = performance.now();
    await spec.runRounds(8);
    roundMs = (performance.now() - r0) / (8 * 16);
  } finally {
    spec.destroy();
  }
  const draftBytes = 8;
  const greedyMsPerByte = 1000 / v.greedyBytesPerS;
  await record({
    bench: "speculative_engine",
    kind: "costs",
    verifier: { d_model: dv, n_layer: lv, vocab: 256 },
    drafter: { d_model: dd, n_layer: ld, vocab: vd },
    draft_tokens: m,
    draft_bytes: draftBytes,
    greedy_bytes_per_s: Math.round(v.greedyBytesPerS),
    verifier_step_ms: round3(v.stepMs),
    verifier_pass8_ms: round3(v.passMs),
    drafter_step_ms: round3(d.stepMs),
    round_ms: round3(roundMs),
    round_parts_ms: round3(m * d.stepMs + v.passMs + v.stepMs),
    speedup_bound: round3((draftBytes + 1) * greedyMsPerByte / roundMs),
    dispatches_per_round: spec.dispatchesPerRound(),
  }, v.device);
}

const verifierDir = all("--verifier").at(-1), drafterDir = all("--drafter").at(-1);
if (verifierDir && drafterDir) {
  await initBackend({ backend: "cpu", quiet: true }); // the models are read on the host, decoded on the engine
  const promptFile = one("--prompt-file", "");
  if (!promptFile) throw new Error("--verifier and --drafter need --prompt-file");
  const prompt = await Deno.readFile(promptFile);
  const bytes = Number(one("--bytes", "2048"));
  const ver = (await loadTrained(verifierDir)).model;
  const { model: dra, tokenizer } = await loadTrained(drafterDir);
  if (!tokenizer) throw new Error(`${drafterDir}: no tokenizer.json (a mamba_subword model is needed)`);
  const vm = asMamba(ver), dm = asMamba(dra);
  const vp = await readParameters(vm), dp = await readParameters(dm);
  const dec = await MambaDecoder.create({
    config: vm.config,
    params: vp,
    stepsPerSubmit: 64,
    allowSoftwareGpu,
  });
  let greedy: Int32Array, greedyS: number, device: string;
  try {
    device = dec.backend.device;
    const g0 = performance.now();
    for (const b of prompt.subarray(0, -1)) await dec.feed([b]);
    greedy = await dec.greedy([prompt.at(-1)!], bytes);
    greedyS = (performance.now() - g0) / 1000;
  } finally {
    dec.destroy();
  }
  for (const beta of list(one("--beta", "1,3"))) {
    const spec = await EngineSpeculative.create({
      verifier: { config: vm.config, params: vp },
      drafter: { config: dm.config, params: dp },
      tokenizer,
      draftTokens: m,
      beta,
      allowSoftwareGpu,
    });
    try {
      const r = await spec.decode(prompt, bytes);
      const identical = r.bytes.every((b, i) => b === greedy[i]);
      const s = r.stats;
      await record({
        bench: "speculative_engine",
        kind: "trained",
        verifier: verifierDir,
        drafter: drafterDir,
        verifier_config: { d_model: vm.config.d_model, n_layer: vm.config.n_layer },
        drafter_config: {
          d_model: dm.config.d_model,
          n_layer: dm.config.n_layer,
          vocab: dm.config.vocab_size,
        },
        prompt_bytes: prompt.length,
        bytes,
        draft_tokens: m,
        beta,
        greedy_bytes_per_s: Math.round(bytes / greedyS),
        speculative_bytes_per_s: Math.round(s.bytesPerSecond),
        speedup: round3(greedyS / s.seconds),
        acceptance: round3(s.acceptanceRate),
        bytes_per_round: round3(bytes / s.rounds),
        identical_to_greedy: identical,
      }, device);
    } finally {
      spec.destroy();
    }
  }
}
