/**
 * Greedy decoding on the native engine (lib/engine/decode.ts): bytes/s at batch 1 (and larger batches) for
 * MambaByte shapes with random weights (speed does not depend on them), several steps per submission, after
 * a context of C bytes (its state: a fixed size, so the cost must not grow with C), the cost of one
 * step submitted alone (a logits read-back each), and at batch 1 the cost of one step and of one
 * verification pass of 8 ids queued back to back (nothing read back: the device's own time per submission). One JSON line per setting on stdout, and with --out FILE
 * the same lines with provenance appended to FILE (e.g. data/results/bench/decode.jsonl). The peer
 * (mamba_ssm's batch-1 step, eager and as a CUDA graph) is ../shared/anchors/peers/h200_peers.py `decode`,
 * run in the same device session.
 *
 *   deno run -A --cached-only lib/bench/decode_engine.ts [--shape 256,4 --shape 1792,48] [--batch 1]
 *     [--steps-per-submit 16,64] [--bytes 512] [--contexts 1024,65536] [--backend webgpu] [--allow-software]
 *     [--out FILE]
 */
import { MambaDecoder } from "../engine/decode.ts";
import { gemvTuning } from "../kernels/webgpu/gemm.ts";
import type { EngineBackendName } from "../engine/backend.ts";
import { initParameters } from "../models/mamba.ts";
import { parseMambaConfig } from "../models/mamba_config.ts";
import { appendBenchLine } from "../results/store.ts";
import { flagValue, flagValues, helpOrUnknown } from "../util/usage.ts";

const USAGE = `deno run -A lib/bench/decode_engine.ts [options]   (greedy decoding on the native engine)
  --shape D,L            d_model, layers (repeatable; default 256,4)
  --batch N              sequences decoded together (default 1)
  --steps-per-submit LIST  greedy steps per submission (default 16,64)
  --bytes N              bytes decoded per timing (default 512)
  --contexts LIST        bytes read before timing (default 1024)
  --fused-conv LIST      auto (default: from d_model 1024 up), on, off: the conv step in in_proj's dispatch
  --profile              also each kernel's device time in one step (summed by kernel)
  --gemv SETTINGS        the GEMV's settings (lib/kernels/webgpu/gemm.ts gemvTuning), as KEY=VALUE pairs
                         (e.g. passColumns=2 or minGroups=128,unroll=2) or MIN,UNROLL,COLS
                         (fewest workgroups, unrolling, columns per group in a pass); repeatable: every
                         shape is measured once per setting
  --backend NAME         webgpu (default) or js
  --allow-software       accept a software WebGPU adapter
  --peers FILE           mamba_ssm's decode step measured in this session (h200_peers.py decode output):
                         each line gets its shape's peer and the ratio to the CUDA graph
  --out FILE             also append the lines, with provenance, to FILE`;
helpOrUnknown(Deno.args, USAGE, "lib/bench/decode_engine.ts");

const all = (name: string) => flagValues(Deno.args, name);
const one = (name: string, fallback: string) => flagValue(Deno.args, name, fallback);
const list = (s: string) => s.split(",").map(Number);
const shapes = (all("--shape").length ? all("--shape") : ["256,4"]).map(list);
const batch = Number(one("--batch", "1"));
const perSubmit = list(one("--steps-per-submit", "16,64"));
const bytes = Number(one("--bytes", "512"));
const contexts = list(one("--contexts", "1024"));
const backend = one("--backend", "webgpu") as EngineBackendName;
const fusedConvs = one("--fused-conv", "auto").split(",").map((
  v,
) => (v === "on" ? true : v === "off" ? false : undefined));
const out = all("--out").at(-1);
const peersFile = all("--peers").at(-1);
// deno-lint-ignore no-explicit-any
const peers: any[] = peersFile
  ? (await Deno.readTextFile(peersFile)).split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l))
  : [];
const say = (s: string) => console.error(`[decode engine] ${s}`);
const defaultGemv = { ...gemvTuning };
/** gemvTuning as the defaults with one --gemv setting applied ("" keeps the defaults). */
function applyGemv(setting: string): void {
  Object.assign(gemvTuning, defaultGemv);
  if (!setting) return;
  if (!setting.includes("=")) {
    const [minGroups, unroll, passColumns] = list(setting);
    Object.assign(gemvTuning, {
      minGroups,
      passMinGroups: minGroups,
      unroll,
      ...(passColumns ? { passColumns } : {}),
    });
    return;
  }
  for (const pair of setting.split(",")) {
    const [key, value] = pair.split("=");
    const was = (gemvTuning as Record<string, unknown>)[key];
    const v = Number(value);
    if (was === undefined || !Number.isFinite(v)) {
      console.error(
        `--gemv: ${pair}: expected KEY=VALUE with KEY one of ${Object.keys(gemvTuning).join(", ")}`,
      );
      Deno.exit(2);
    }
    (gemvTuning as Record<string, unknown>)[key] = v;
  }
}
const gemvSettings = all("--gemv").length ? all("--gemv") : [""];
for (const g of gemvSettings) applyGemv(g); // a bad setting fails before any model is built
const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** The same-session peer of a batch-1 shape, and the ratio of `bytesPerS` to its CUDA graph. */
function peerOf(d: number, L: number, bytesPerS: number) {
  const p = batch === 1
    ? peers.find((x) => x.kind === "decode_b1" && x.d_model === d && x.n_layer === L)
    : undefined;
  if (!p) return {};
  return {
    peer: { cuda_graph_bytes_per_s: p.cuda_graph_bytes_per_s, eager_bytes_per_s: p.eager_bytes_per_s },
    peer_source: `same run: ../shared/anchors/peers/h200_peers.py decode (${peersFile})`,
    ratio_to_cuda_graph: Math.round(bytesPerS / p.cuda_graph_bytes_per_s * 1000) / 1000,
  };
}

for (const [d, L] of shapes) {
  const config = parseMambaConfig({ d_model: d, n_layer: L, vocab_size: 256 }, "bench");
  say(`d${d} x ${L}: initialising ${L} layers of random weights`);
  const params = initParameters(config, 0);
  const settings = gemvSettings.flatMap((g) =>
    perSubmit.flatMap((K) => fusedConvs.map((f) => [g, K, f] as const))
  );
  for (const [gemv, K, fusedConv] of settings) {
    applyGemv(gemv);
    const t0 = performance.now();
    const dec = await MambaDecoder.create({
      config,
      params,
      batch,
      backend,
      stepsPerSubmit: K,
      fusedConv,
      timestamps: Deno.args.includes("--profile"),
      allowSoftwareGpu: Deno.args.includes("--allow-software"),
    });
    const createMs = performance.now() - t0;
    try {
      const first = new Int32Array(batch).fill(65);
      // one step alone, logits read back (the cost a host-side sampler or a test pays per byte)
      await dec.step(first);
      const s0 = performance.now();
      for (let i = 0; i < 20; i++) await dec.step(first);
      const stepMs = (performance.now() - s0) / 20;
      // GPU cost of one step and of one pass of 8 ids (batch 1): 25 of each queued, nothing read back, in
      // 5 alternating rounds whose medians are kept (one call's single round read a host-bound 4.9 ms step
      // against 2.7 ms per byte while generating)
      let queuedStepMs: number | undefined, pass8Ms: number | undefined;
      if (batch === 1) {
        const time = async (run: () => Promise<unknown>) => {
          await dec.backend.finish();
          const q0 = performance.now();
          for (let i = 0; i < 25; i++) await run();
          await dec.backend.finish();
          return (performance.now() - q0) / 25;
        };
        const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1];
        const step = () => dec.feed(first);
        const pass = () => dec.pass([65, 66, 67, 68, 69, 70, 71, 72], { read: false });
        await step();
        await pass();
        const steps: number[] = [], passes: number[] = [];
        for (let round = 0; round < 5; round++) {
          steps.push(await time(step));
          passes.push(await time(pass));
        }
        queuedStepMs = median(steps);
        pass8Ms = median(passes);
      }
      const profileOf = async (passOf?: number) =>
        (await dec.profileStep(passOf)).map((k) => ({
          label: k.label,
          ms: round3(k.ms),
          count: k.count,
          gbPerS: Math.round(k.boundBytes / k.ms / 1e6),
        }));
      const profiling = Deno.args.includes("--profile");
      const profile = profiling ? await profileOf() : undefined;
      const passProfile = profiling && batch === 1 ? await profileOf(8) : undefined;
      for (const C of contexts) {
        dec.reset();
        // the context: C bytes read through the fast path (greedy submissions); only the state size matters
        const c0 = performance.now();
        await dec.greedy(first, C);
        const contextS = (performance.now() - c0) / 1000;
        const host0 = { ...dec.backend.hostTimes! };
        const g0 = performance.now();
        await dec.greedy(first, bytes);
        const s = (performance.now() - g0) / 1000;
        const host = dec.backend.hostTimes!;
        // the same submission's device time (timestamps at the ends of its pass), when profiling
        const submissionMs = Deno.args.includes("--profile") ? await dec.greedySubmissionMs() : undefined;
        const line = {
          bench: "decode_engine",
          backend,
          device: dec.backend.device,
          d_model: d,
          n_layer: L,
          batch,
          steps_per_submit: K,
          context: C,
          bytes,
          bytes_per_s: Math.round(batch * bytes / s),
          ms_per_step: Math.round(s * 1000 / bytes * 1000) / 1000,
          context_bytes_per_s: Math.round(batch * C / contextS),
          single_step_ms: Math.round(stepMs * 1000) / 1000,
          ...(queuedStepMs !== undefined
            ? {
              queued_step_ms: Math.round(queuedStepMs * 1000) / 1000,
              pass8_ms: Math.round(pass8Ms! * 1000) / 1000,
              pass8_over_step: Math.round(pass8Ms! / queuedStepMs * 1000) / 1000,
            }
            : {}),
          // host milliseconds per step while generating: encoding the submissions, waiting for a read-back
          host_encode_ms_per_step: round3((host.encodeMs - host0.encodeMs) / bytes),
          host_wait_ms_per_step: round3((host.waitMs - host0.waitMs) / bytes),
          host_map_ms_per_step: round3((host.mapMs - host0.mapMs) / bytes),
          ...(submissionMs !== undefined ? { submission_gpu_ms_per_step: round3(submissionMs) } : {}),
          ...peerOf(d, L, batch * bytes / s),
          dispatches_per_step: dec.dispatchesPerStep(),
          fused_conv: fusedConv ?? "auto",
          gemv: { ...gemvTuning },
          ...(profile ? { step_profile: profile } : {}),
          ...(passProfile ? { pass8_profile: passProfile } : {}),
          gpu_bytes: dec.backend.allocatedBytes,
          create_ms: Math.round(createMs),
        };
        console.log(JSON.stringify(line));
        if (out) await appendBenchLine(out, line, `engine ${backend}`, dec.backend.device);
      }
    } finally {
      dec.destroy();
    }
  }
}
