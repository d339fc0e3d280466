/**
 * What a live view costs a training cell: the same MambaByte trained in a real Deno Jupyter kernel (a
 * notebook executed headless by Debian's nbclient, lib/notebook/run.ts) with and without
 * `liveTraining`'s `onStep`, in alternating order, `--reps` times each (after a warm-up run that is not
 * counted); one record in
 * data/results/bench/live.jsonl with every run's bytes/s, the live runs' draw counts and the ratio of
 * the two kinds within each adjacent pair of runs (and its median).
 *
 *   deno run -A lib/bench/live.ts [--shape 64,2,8,128] [--steps 150] [--reps 5] [--backend wasm] [--out DIR]
 */
import { appendRecord } from "../results/store.ts";
import { code, writeNotebook } from "../notebook/build.ts";
import { runNotebook } from "../notebook/run.ts";
import { REPO_ROOT } from "../paths.ts";
import { type BackendName, initBackend } from "../backend.ts";
import { helpOrUnknown } from "../util/usage.ts";

const USAGE = `deno run -A lib/bench/live.ts [options]   (training throughput with and without a live view)
  --shape D,L,B,T   d_model, layers, batch, length (default 64,2,8,128)
  --steps N         steps per run (default 150)
  --reps N          runs of each kind, alternating (default 5)
  --backend NAME    the kernel's TF.js backend (default wasm)
  --out DIR         results directory (default data/results)`;

helpOrUnknown(Deno.args, USAGE, "lib/bench/live.ts");
const arg = (name: string, fallback: string) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : fallback;
};
const [d, layers, batch, length] = arg("--shape", "64,2,8,128").split(",").map(Number);
const steps = Number(arg("--steps", "150")), reps = Number(arg("--reps", "5"));
const backend = arg("--backend", "wasm") as BackendName;
for (const [k, v] of Object.entries({ d, layers, batch, length, steps, reps })) {
  if (!(Number.isInteger(v) && v >= 1)) {
    console.error(`live bench: ${k} must be a positive integer (got ${v})`);
    Deno.exit(2);
  }
}

await Deno.mkdir(`${REPO_ROOT}data/tmp`, { recursive: true });
const dir = await Deno.makeTempDir({ dir: `${REPO_ROOT}data/tmp`, prefix: "bench-live-" });
const mod = new URL("../mod.ts", import.meta.url).href;
const resultFile = `${dir}/result.json`;
try {
  // one cell: the runs alternate (plain, live, live, plain, ...) so drifts of the machine hit both kinds
  await writeNotebook(`${dir}/live.ipynb`, [
    code`import * as mb from "${mod}";
const info = await mb.initBackend({ backend: "${backend}", quiet: true });
const data = await mb.readSplit("${REPO_ROOT}data/samples/books/train");
const cfg = { steps: ${steps}, batch: ${batch}, length: ${length}, lr: 1e-3, warmup: 10, seed: 0 };
const runs: { live: boolean; bytes_per_s: number; wall_s: number; draws?: number }[] = [];
// a short run first, not counted: compilation and the first allocations would land on the first kind
await mb.train(mb.createModel("mambabyte", { d_model: ${d}, n_layer: ${layers} }, 0), data, { ...cfg, steps: 60 });
for (let i = 0; i < ${2 * reps}; i++) {
  const live = (i % 4 === 1 || i % 4 === 2);
  const model = mb.createModel("mambabyte", { d_model: ${d}, n_layer: ${layers} }, 0);
  const view = live ? mb.liveTraining({ ...cfg, title: "run " + i }) : undefined;
  const t0 = performance.now();
  const r = await mb.train(model, data, { ...cfg, onStep: view?.onStep });
  const wall = (performance.now() - t0) / 1000;
  runs.push({ live, bytes_per_s: r.bytes_seen / wall, wall_s: wall, ...(view ? { draws: view.draws } : {}) });
  await view?.finish();
  mb.disposeModel(model);
}
await Deno.writeTextFile("${resultFile}", JSON.stringify({ backend: info.backend, device: info.device, runs }));`,
  ]);
  const t0 = performance.now();
  const r = await runNotebook(`${dir}/live.ipynb`, {
    scale: "smoke",
    outDir: dir,
    html: false,
    force: true,
    heartbeatS: 0,
    timeoutS: -1,
  });
  if (!r.ok) throw new Error(`the benchmark notebook failed: ${r.error}`);
  const got = JSON.parse(await Deno.readTextFile(resultFile)) as {
    backend: string;
    device: string;
    runs: { live: boolean; bytes_per_s: number; wall_s: number; draws?: number }[];
  };
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const plain = got.runs.filter((x) => !x.live).map((x) => x.bytes_per_s);
  const live = got.runs.filter((x) => x.live).map((x) => x.bytes_per_s);
  // runs come in pairs (plain, live), (live, plain), ...: the ratio within each pair shares the machine's state
  const pairs = Array.from({ length: reps }, (_, i) => {
    const [a, b] = got.runs.slice(2 * i, 2 * i + 2);
    return (a.live ? a : b).bytes_per_s / (a.live ? b : a).bytes_per_s;
  });
  const ratio = median(pairs);
  await initBackend({ backend, quiet: true }); // the record's provenance names the kernel's backend too
  const path = await appendRecord("live", {
    bench: "live",
    where: "Deno Jupyter kernel, notebook executed by nbclient (lib/notebook/run.ts)",
    kernel_backend: got.backend,
    kernel_device: got.device,
    model: `mambabyte d${d} x ${layers}`,
    batch,
    length,
    steps,
    reps,
    runs: got.runs,
    plain_bytes_per_s_median: median(plain),
    live_bytes_per_s_median: median(live),
    live_over_plain_pairs: pairs,
    live_over_plain: ratio,
    wall_s: (performance.now() - t0) / 1000,
  }, arg("--out", `${REPO_ROOT}data/results`) + "/bench");
  console.log(
    `live view: ${median(live).toFixed(0)} bytes/s with, ${median(plain).toFixed(0)} without ` +
      `(medians of ${reps}); live / plain within pairs ${pairs.map((x) => x.toFixed(3)).join(", ")}, median ${
        ratio.toFixed(4)
      }; recorded in ${path.replace(REPO_ROOT, "")}`,
  );
} finally {
  await Deno.remove(dir, { recursive: true });
}
