/**
 * `deno task bench` (lib/bench/main.ts) in --quick mode: it writes one record per (backend, impl, pass)
 * with the measurement fields and provenance, records a pass that does not fit its budget as skipped with
 * the reason, and finds the peer figures in data/anchors. No assertion on speed.
 */
import assert from "node:assert/strict";
import { readRecords } from "../lib/results/store.ts";
import { peerFigures } from "../lib/bench/anchors.ts";
import { minBytes, type ScanRecord } from "../lib/bench/scan_bench.ts";
import { QUICK_SHAPE } from "../lib/bench/options.ts";
import { SCAN_IMPLS } from "../lib/ssm/mod.ts";

const MAIN = new URL("../lib/bench/main.ts", import.meta.url).pathname;
const ROOT = new URL("../", import.meta.url).pathname;

async function bench(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("bench --quick writes a record with provenance per backend, implementation and pass", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bench_test_" });
  try {
    // budgets far beyond any machine's need: every pass runs however loaded the machine is (the time
    // a pass takes decides nothing here)
    const { code, stdout, stderr } = await bench([
      "--quick",
      "--backends",
      "wasm,cpu",
      "--budget",
      "100000",
      "--total-budget",
      "1000000",
      "--out",
      dir,
    ]);
    assert.equal(code, 0, stderr);
    const records = await readRecords<ScanRecord & { provenance: Record<string, unknown> }>("scan", dir);
    for (const backend of ["wasm", "cpu"]) {
      for (const impl of SCAN_IMPLS) {
        for (const pass of ["fwd", "fwd+bwd"]) {
          const r = records.find((x) => x.backend === backend && x.impl === impl && x.pass === pass);
          assert.ok(r, `no record for ${backend} ${impl} ${pass}`);
          assert.equal(r.bench, "scan");
          assert.deepEqual(r.shape, QUICK_SHAPE);
          assert.equal(r.status, "ok", `${backend} ${impl} ${pass}: ${r.reason}`);
          assert.equal(r.skipped, false);
          assert.ok(r.runs >= 1 && r.runs <= r.repeats);
          assert.equal(r.times_ms.length, r.runs);
          for (
            const key of [
              "median_ms",
              "min_ms",
              "warmup_ms",
              "estimate_ms",
              "min_bytes",
              "bytes_per_s",
            ] as const
          ) {
            assert.ok(typeof r[key] === "number" && r[key]! > 0, `${key} = ${r[key]}`);
          }
          assert.ok(r.min_ms! <= r.median_ms!);
          assert.equal(r.min_bytes, minBytes(QUICK_SHAPE, pass as "fwd" | "fwd+bwd"));
          assert.ok(typeof r.peak_tensor_bytes === "number" && r.peak_tensor_bytes > 0);
          assert.ok(typeof r.tensor_bytes_after === "number");
          assert.ok(r.peak_rss_bytes === null || r.peak_rss_bytes > 0);
          assert.deepEqual(r.warnings, [], "tensors left behind");
          assert.equal(r.peer, null, "no anchor covers the quick shape");
          const p = r.provenance;
          assert.equal(p.backend, backend);
          for (const key of ["commit", "device", "time", "deno", "tfjs", "host"]) {
            assert.ok(p[key], `provenance.${key}`);
          }
        }
      }
    }
    assert.equal(new Set(records.map((r) => r.run_id)).size, 1);
    assert.equal(records.length, 16);
    assert.match(stdout, /backend\s+impl\s+pass\s+runs\s+median ms/);
    assert.match(stdout, /16 records in /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bench records a pass over its time budget as skipped, with the reason", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bench_test_" });
  try {
    const { code, stdout, stderr } = await bench([
      "--quick",
      "--backends",
      "cpu",
      "--impls",
      "sequential",
      "--passes",
      "fwd+bwd",
      "--budget",
      "0.001",
      "--out",
      dir,
    ]);
    assert.equal(code, 0, stderr);
    const [r, ...rest] = await readRecords<ScanRecord>("scan", dir);
    assert.equal(rest.length, 0);
    assert.equal(r.status, "skipped");
    assert.equal(r.skipped, true);
    assert.match(r.reason!, /budget/);
    assert.equal(r.median_ms, null);
    assert.equal(r.runs, 0);
    assert.ok(r.estimate_ms! > 0 && r.probes.length === 1);
    assert.match(stdout, /skipped \[1\]/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("peer figures come from data/anchors for the benchmark shapes", async () => {
  const cpuShape = { B: 1, D: 512, N: 16, L: 2048 };
  const fwd = await peerFigures("wasm", "some CPU", cpuShape, "fwd");
  assert.equal(fwd[0].peer, "pytorch-pscan");
  assert.ok(Math.abs(fwd[0].ms - 950) < 1e-9);
  assert.match(fwd[0].source, /^data\/anchors\/cpu-pytorch-.*\.json$/);
  const bwd = await peerFigures("cpu", "some CPU", cpuShape, "fwd+bwd");
  assert.ok(Math.abs(bwd[0].ms - 2400) < 1e-9);
  // the reference loop's figure exists at L = 256 only
  const short = await peerFigures("cpu", "some CPU", { ...cpuShape, L: 256 }, "fwd+bwd");
  assert.deepEqual(short.map((p) => p.peer), ["pytorch-pscan", "pytorch-ref"]);
  assert.deepEqual(await peerFigures("cpu", "some CPU", { B: 1, D: 8, N: 4, L: 40 }, "fwd"), []);
  // H200 figures only for webgpu on an H200
  const gpuShape = { B: 8, D: 1536, N: 16, L: 8192 };
  assert.deepEqual(await peerFigures("webgpu", "llvmpipe (software fallback adapter)", gpuShape, "fwd"), []);
  const cuda = await peerFigures("webgpu", "NVIDIA H200", gpuShape, "fwd+bwd");
  assert.equal(cuda[0].peer, "mamba_ssm-cuda");
  assert.ok(Math.abs(cuda[0].ms - 12.953375816345215) < 1e-9);
});

Deno.test("minBytes matches the anchors' fwd_min_bytes_GB definition", async () => {
  const dir = new URL("../data/anchors/", import.meta.url).pathname;
  const file = [...Deno.readDirSync(dir)].find((e) => e.name.startsWith("h200-selective-scan-"))!.name;
  const entries = JSON.parse(await Deno.readTextFile(dir + file)) as {
    B: number;
    D: number;
    N: number;
    L: number;
    fwd_min_bytes_GB: number;
  }[];
  for (const { B, D, N, L, fwd_min_bytes_GB } of entries) {
    assert.equal(minBytes({ B, D, N, L }, "fwd"), Math.round(fwd_min_bytes_GB * 1e9));
  }
});

Deno.test("bench: an unknown suite is named in the error, before anything runs", async () => {
  const { code, stderr } = await bench(["--suite", "scan,nope"]);
  assert.equal(code, 1);
  assert.match(stderr, /unknown suite "nope"; expected some of scan, train, decode, gpu/);
  const peer = await bench(["decode", "--peer", "llama"]);
  assert.equal(peer.code, 1);
  assert.match(peer.stderr, /--peer: the CPU decoding peer is "llama.cpp" \(got "llama"\)/);
});

Deno.test("bench llama.ts: the project's stepper and llama.cpp decode the same random model; one record with provenance", async () => {
  const dir = await Deno.makeTempDir({ prefix: "llama-bench-" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${ROOT}lib/bench/llama.ts`,
        "--shape",
        "64,2,32,8",
        "--reps",
        "1",
        "--threads",
        "1",
        "--project-threads",
        "2",
        "--weights",
        "int8",
      ]
        .concat(["--out", `${dir}/llama.jsonl`]),
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const [line] = (await Deno.readTextFile(`${dir}/llama.jsonl`)).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert.equal(line.bench, "llama_cpu");
    assert.equal(line.project.path, "WebAssembly SIMD, 2 threads, 1 memory");
    assert.ok(line.project.decode_bytes_per_s > 0 && line.llama_cpp["1_threads"].decode_bytes_per_s > 0);
    // f32 comes first whatever --weights says; int8 beside it, its ratio to f32 from the same run
    const int8 = line.project_formats.int8;
    assert.equal(int8.weights, "int8");
    assert.deepEqual(int8.matrices, { int8: 7, f32: 2 }); // dt_proj (4 columns) stays f32 in both layers
    assert.equal(
      int8.decode_over_f32,
      Math.round(int8.decode_bytes_per_s / line.project.decode_bytes_per_s * 1e3) / 1e3,
    );
    assert.ok(line.memory_copy_gb_per_s > 0);
    assert.equal(line.provenance.backend, "cpu (WebAssembly SIMD stepper, 2 threads)");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
