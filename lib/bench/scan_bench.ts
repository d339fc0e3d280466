/**
 * The selective-scan benchmark of ONE (backend, implementation, pass), run in a child process of
 * lib/bench/main.ts so that each gets clean memory figures and a crash (e.g. the wasm heap's 4 GiB limit)
 * or a run far slower than estimated stays contained.
 *
 * Passes: "fwd" is y = selectiveScan(...); "fwd+bwd" is tf.valueAndGrads of sum(y * gy) with respect to all
 * eight inputs. Within the pass's time budget:
 *   1. probes at shorter lengths estimate one full-length run (see `probeAndEstimate`); when a warm-up and
 *      one timed run would not fit, the pass is recorded as skipped, with the estimate and its evidence;
 *   2. one warm-up run under tf.profile (for the peak tensor bytes; its time is not used);
 *   3. up to `repeats` timed runs, each started only if it is predicted to end within the budget.
 * Every run awaits .data() of every output (never dataSync, so webgpu works too) and disposes everything;
 * tf.memory().numTensors is checked after each run. The record goes to <out>/scan.jsonl.
 */
import { type BackendName, initBackend, tf } from "../backend.ts";
import { availableScanImpls, type ScanImpl, selectiveScan } from "../ssm/mod.ts"; // mod.ts registers the fused kernels
import { appendRecord } from "../results/store.ts";
import { Rng } from "../util/rng.ts";
import { type PeerFigure, peerFigures } from "./anchors.ts";
import { type PeakScope, rssBytes, rssPeakTracker } from "./memory.ts";
import type { BenchOptions, Pass, Shape } from "./options.ts";

/** The scan's inputs as Mamba feeds them, plus the upstream gradient gy. */
export interface ScanTensors {
  u: tf.Tensor3D;
  delta: tf.Tensor3D;
  A: tf.Tensor2D;
  B: tf.Tensor3D;
  C: tf.Tensor3D;
  D: tf.Tensor1D;
  z: tf.Tensor3D;
  deltaBias: tf.Tensor1D;
  gy: tf.Tensor3D;
}

/**
 * Realistic inputs: mamba_ssm's initialisation. deltaBias = softplus^-1(dt) with dt log-uniform in
 * [1e-3, 0.1] per channel, so softplus(delta + deltaBias) stays near that range for the small raw delta
 * (a projection's output, here N(0, 0.1^2)); A = -exp(A_log) with A_log = log(1..N), i.e. A[d, n] = -(n+1);
 * D = 1; u, z, B, C, gy standard normal.
 */
export function makeInputs(shape: Shape, seed = 1): ScanTensors {
  const { B: b, D: d, N: n, L: l } = shape;
  const rng = new Rng(seed);
  const dt = Array.from(
    { length: d },
    () => Math.exp(Math.log(1e-3) + rng.uniform() * (Math.log(0.1) - Math.log(1e-3))),
  );
  const deltaBias = Float32Array.from(dt, (x) => x + Math.log(-Math.expm1(-x))); // softplus^-1
  const A = new Float32Array(d * n);
  for (let i = 0; i < d; i++) for (let j = 0; j < n; j++) A[i * n + j] = -Math.exp(Math.log(j + 1));
  return {
    u: tf.tensor3d(rng.normalArray(b * d * l), [b, d, l]),
    delta: tf.tensor3d(rng.normalArray(b * d * l, 0.1), [b, d, l]),
    A: tf.tensor2d(A, [d, n]),
    B: tf.tensor3d(rng.normalArray(b * n * l), [b, n, l]),
    C: tf.tensor3d(rng.normalArray(b * n * l), [b, n, l]),
    D: tf.tensor1d(new Float32Array(d).fill(1)),
    z: tf.tensor3d(rng.normalArray(b * d * l), [b, d, l]),
    deltaBias: tf.tensor1d(deltaBias),
    gy: tf.tensor3d(rng.normalArray(b * d * l), [b, d, l]),
  };
}

/**
 * Bytes a pass must move at least, float32. Forward: read u, delta, z, B, C and write y (the definition of
 * `fwd_min_bytes_GB` in data/anchors/h200-selective-scan-*.json). Forward+backward adds the backward's
 * reads (u, delta, z, B, C, gy) and writes (du, ddelta, dz, dB, dC); the (d_inner)- and (d_inner, d_state)-
 * sized tensors are negligible and left out.
 */
export function minBytes(shape: Shape, pass: Pass): number {
  const big = shape.B * shape.D * shape.L, small = shape.B * shape.N * shape.L;
  const fwd = 4 * big + 2 * small;
  const bwd = (4 * big + 2 * small) + (3 * big + 2 * small);
  return 4 * (pass === "fwd" ? fwd : fwd + bwd);
}

interface RunResult {
  ms: number;
  /** tf.memory().numBytes after the pass, before disposing its outputs, above the level before the run. */
  tensorBytesAfter: number;
  rssAfter: number;
  peakRss: number | null;
  peakRssScope: PeakScope;
  /** Engine-tracked tensor bytes at their peak during the run, above the level before it (profiled runs). */
  peakTensorBytes?: number;
  /** numTensors after disposing minus before the run: 0 unless something leaks. */
  tensorDelta: number;
}

type RunFn = () => Promise<{ tensorBytesAfter: number; rssAfter: number }>;

/** One run of a pass: returns a function that runs it once, awaiting every output, then disposing it. */
function passRunner(impl: ScanImpl, pass: Pass, t: ScanTensors): RunFn {
  const opts = { deltaSoftplus: true, impl };
  if (pass === "fwd") {
    return async () => {
      const before = tf.memory().numBytes;
      const { y } = selectiveScan(t.u, t.delta, t.A, t.B, t.C, t.D, t.z, t.deltaBias, opts);
      await y.data();
      const after = { tensorBytesAfter: tf.memory().numBytes - before, rssAfter: rssBytes() };
      y.dispose();
      return after;
    };
  }
  const loss = (...x: tf.Tensor[]): tf.Scalar => {
    const { y } = selectiveScan(x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], opts);
    return tf.sum(tf.mul(y, t.gy));
  };
  const valueAndGrads = tf.valueAndGrads(loss);
  const inputs = [t.u, t.delta, t.A, t.B, t.C, t.D, t.z, t.deltaBias];
  return async () => {
    const before = tf.memory().numBytes;
    const { value, grads } = valueAndGrads(inputs);
    await Promise.all([value.data(), ...grads.map((g) => g.data())]);
    const after = { tensorBytesAfter: tf.memory().numBytes - before, rssAfter: rssBytes() };
    tf.dispose([value, ...grads]);
    return after;
  };
}

/** What tf.profile records per kernel (the part used here). */
type KernelSnapshot = { totalBytesSnapshot: number };

/**
 * Runs `f` under tf.profile and returns the peak of the engine's tensor bytes after any kernel. tfjs 4.22
 * computes that peak as Math.max(...kernels), which overflows the call stack beyond ~10^5 kernels (the
 * op-built scans' backward at L = 2048); the kernels it recorded are then read from the engine's active
 * profile and the maximum taken with a loop.
 */
async function profiledPeakBytes(f: () => Promise<void>): Promise<number> {
  let kernels: KernelSnapshot[];
  let finished = false;
  try {
    kernels = (await tf.profile(async () => {
      await f();
      finished = true;
      return [];
    })).kernels;
  } catch (e) {
    if (!finished || !(e instanceof RangeError)) throw e;
    const state =
      (tf.engine() as unknown as { state: { activeProfile: { kernels: KernelSnapshot[] } } }).state;
    kernels = state.activeProfile.kernels;
  }
  let peak = 0;
  for (const k of kernels) peak = Math.max(peak, k.totalBytesSnapshot);
  return peak;
}

async function timedRun(run: RunFn, profile: boolean): Promise<RunResult> {
  const tensorsBefore = tf.memory().numTensors;
  const bytesBefore = tf.memory().numBytes;
  const rss = rssPeakTracker();
  const t0 = performance.now();
  let result: { tensorBytesAfter: number; rssAfter: number };
  let peakTensorBytes: number | undefined;
  if (profile) {
    peakTensorBytes = Math.max(
      0,
      await profiledPeakBytes(async () => void (result = await run())) - bytesBefore,
    );
  } else {
    result = await run();
  }
  const ms = performance.now() - t0;
  const peak = rss.peak();
  return {
    ms,
    ...result!,
    peakRss: peak.bytes,
    peakRssScope: peak.scope,
    peakTensorBytes,
    tensorDelta: tf.memory().numTensors - tensorsBefore,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const round = (x: number, digits = 3) => Number(x.toFixed(digits));
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The record of one (backend, impl, pass), written to scan.jsonl. */
export interface ScanRecord {
  bench: "scan";
  run_id: string;
  backend: BackendName;
  impl: ScanImpl;
  pass: Pass;
  shape: Shape;
  status: "ok" | "skipped" | "failed";
  skipped: boolean;
  /** Why the pass was skipped or failed. */
  reason?: string;
  median_ms: number | null;
  min_ms: number | null;
  times_ms: number[];
  /** Timed runs done, and asked for. */
  runs: number;
  repeats: number;
  /** The warm-up's time (null when none ran: see `warnings`). */
  warmup_ms: number | null;
  /** Probe runs (length, ms) that gave the estimate. */
  probes: { L: number; ms: number }[];
  /** One run's time at full length predicted from the probes, and the exponent p of t ~ L^p used. */
  estimate_ms: number | null;
  estimate_exponent: number | null;
  budget_s: number;
  /** Peak of tf.memory().numBytes during the profiled run (the warm-up), above the inputs. */
  peak_tensor_bytes: number | null;
  /** tf.memory().numBytes after the pass, before disposing (y, or the value and the eight gradients). */
  tensor_bytes_after: number | null;
  /** Peak resident set over the warm-up and timed runs; `peak_rss_scope` "run" = reset before each run. */
  peak_rss_bytes: number | null;
  peak_rss_scope: PeakScope;
  rss_after_bytes: number | null;
  rss_before_bytes: number;
  /** Minimum bytes the pass must move (see `minBytes`), and that over the median time. */
  min_bytes: number;
  bytes_per_s: number | null;
  /** The preferred peer figure on the same shape (null where no anchor covers it), all of them, and ratio. */
  peer: PeerFigure | null;
  peers: PeerFigure[];
  /** peer ms / our median ms: above 1 means faster than the peer. */
  vs_peer: number | null;
  scan_options: { deltaSoftplus: true; D: true; z: true; deltaBias: true };
  /** Tensors the implementation keeps after its first call in this process (cached constants). */
  first_call_kept_tensors: number;
  /** Tensors left behind by a run (numTensors not back to its level before the run). */
  warnings: string[];
  /** How the measurement deviated from the plan: fewer runs than asked, no separate warm-up. */
  notes: string[];
  /** A run killed when the budget ran out: what it was, and how long it had run (a lower bound). */
  unfinished?: { phase: string; ms_at_least: number };
}

function baseRecord(
  opts: BenchOptions,
  backend: BackendName,
  impl: ScanImpl,
  pass: Pass,
  peers: PeerFigure[],
): ScanRecord {
  return {
    bench: "scan",
    run_id: opts.runId,
    backend,
    impl,
    pass,
    shape: opts.shape,
    status: "ok",
    skipped: false,
    median_ms: null,
    min_ms: null,
    times_ms: [],
    runs: 0,
    repeats: opts.repeats,
    warmup_ms: null,
    probes: [],
    estimate_ms: null,
    estimate_exponent: null,
    budget_s: opts.budgetS,
    peak_tensor_bytes: null,
    tensor_bytes_after: null,
    peak_rss_bytes: null,
    peak_rss_scope: "unavailable",
    rss_after_bytes: null,
    rss_before_bytes: rssBytes(),
    min_bytes: minBytes(opts.shape, pass),
    bytes_per_s: null,
    peer: peers[0] ?? null,
    peers,
    vs_peer: null,
    scan_options: { deltaSoftplus: true, D: true, z: true, deltaBias: true },
    first_call_kept_tensors: 0,
    warnings: [],
    notes: [],
  };
}

/**
 * Records of passes that did not finish (an implementation missing here, or a crashed or killed child);
 * `known` carries what the child reported before it stopped (probes, estimate, ...).
 */
export async function writeUnrunRecords(
  opts: BenchOptions,
  backend: BackendName,
  impl: ScanImpl,
  passes: Pass[],
  status: "skipped" | "failed",
  reason: string,
  known: Partial<ScanRecord> = {},
): Promise<void> {
  const info = await initBackend({ backend, quiet: true });
  for (const pass of passes) {
    const rec = baseRecord(
      opts,
      backend,
      impl,
      pass,
      await peerFigures(backend, info.device, opts.shape, pass),
    );
    await appendRecord("scan", { ...rec, ...known, status, skipped: true, reason }, opts.out);
  }
}

/**
 * A child reports its progress on stderr: "[bench] ..." lines for people, and "[bench-state] {json}"
 * lines for the parent, which turns the last one into the record if the child dies or is killed.
 */
export const STATE_PREFIX = "[bench-state] ";
export interface ChildState {
  /** The record so far. */
  record: ScanRecord;
  /** What the child is doing ("timed run 1 of 3") and since when (ms since the epoch). */
  phase: string;
  since: number;
}

function reportState(record: ScanRecord, phase: string): void {
  console.error(`[bench] ${record.backend} ${record.impl} ${record.pass}: ${phase}`);
  const state: ChildState = { record, phase, since: Date.now() };
  console.error(STATE_PREFIX + JSON.stringify(state));
}

/** Above this estimated run time the probes serve as the warm-up (one-off costs are negligible then). */
const LONG_RUN_MS = 20_000;

/**
 * Runs the probes and estimates the time of one run at full length. Lengths up to `probeLength` are run
 * directly. Longer ones are extrapolated from runs at probeLength / 2 and probeLength (after a small run
 * that pays the one-off compilation costs) with a power law t ~ L^p, p = log2(t(P) / t(P/2)) clamped to
 * [1, 3]: some op-built scans are superlinear in L, and a linear extrapolation would under-estimate them.
 * Returns undefined when a probe, predicted from the one before (linear in L), would not end by `deadline`.
 */
async function probeAndEstimate(
  impl: ScanImpl,
  pass: Pass,
  shape: Shape,
  probeLength: number,
  full: ScanTensors,
  probes: { L: number; ms: number }[],
  progress: (phase: string) => void,
  deadline: number,
): Promise<{ estimateMs: number; exponent: number } | undefined> {
  if (shape.L <= probeLength) {
    progress(`probe at L=${shape.L}`);
    const r = await timedRun(passRunner(impl, pass, full), false);
    probes.push({ L: shape.L, ms: round(r.ms) });
    return { estimateMs: r.ms, exponent: 1 };
  }
  for (const L of [Math.max(1, Math.round(probeLength / 4)), Math.round(probeLength / 2), probeLength]) {
    const previous = probes.at(-1);
    if (previous && performance.now() + previous.ms * L / previous.L > deadline) return undefined;
    progress(`probe at L=${L}`);
    const inputs = makeInputs({ ...shape, L }, 2);
    try {
      probes.push({ L, ms: round((await timedRun(passRunner(impl, pass, inputs), false)).ms) });
    } finally {
      tf.dispose(Object.values(inputs));
    }
  }
  const [, half, top] = probes;
  const exponent = Math.min(3, Math.max(1, Math.log(top.ms / half.ms) / Math.log(top.L / half.L)));
  return { estimateMs: top.ms * (shape.L / top.L) ** exponent, exponent: round(exponent, 2) };
}

/** Benchmarks one pass, filling in `rec` as it goes, and returns the final record (not yet written). */
async function benchPass(
  opts: BenchOptions,
  rec: ScanRecord,
  full: ScanTensors,
  progress: (phase: string) => void,
): Promise<ScanRecord> {
  const { impl, pass } = rec;
  const budgetMs = opts.budgetS * 1000;
  const start = performance.now();
  const elapsed = () => performance.now() - start;
  const checkTensors = (label: string, r: RunResult) => {
    if (r.tensorDelta !== 0) {
      rec.warnings.push(`${label}: numTensors changed by ${r.tensorDelta} after disposing`);
    }
  };

  // 1. probes -> estimate of one full-length run
  const tensorsAtStart = tf.memory().numTensors;
  const est = await probeAndEstimate(
    impl,
    pass,
    opts.shape,
    opts.probeLength,
    full,
    rec.probes,
    progress,
    start + budgetMs,
  );
  rec.first_call_kept_tensors = Math.max(0, tf.memory().numTensors - tensorsAtStart);
  if (!est) {
    const last = rec.probes.at(-1)!;
    return {
      ...rec,
      status: "skipped",
      skipped: true,
      reason: `even the probes do not fit the ${opts.budgetS} s budget: the probe at L=${last.L} took ` +
        `${seconds(last.ms)}, so a full run at L=${opts.shape.L} would take about ` +
        `${seconds(last.ms * opts.shape.L / last.L)} if linear in L`,
    };
  }
  rec.estimate_ms = round(est.estimateMs);
  rec.estimate_exponent = est.exponent;
  const longRun = est.estimateMs > LONG_RUN_MS;
  const needed = (longRun ? 1 : 2) * est.estimateMs;
  if (elapsed() + needed > budgetMs) {
    const from = rec.probes.length === 1
      ? `a run at L=${opts.shape.L} took ${seconds(rec.probes[0].ms)}`
      : `probes ${rec.probes.slice(1).map((p) => `L=${p.L}: ${seconds(p.ms)}`).join(", ")}, scaled as ` +
        `L^${est.exponent} to L=${opts.shape.L}`;
    return {
      ...rec,
      status: "skipped",
      skipped: true,
      reason: `estimated ${seconds(est.estimateMs)} per run (${from}): ` +
        `${
          longRun ? "one timed run" : "a warm-up and one timed run"
        } would exceed the ${opts.budgetS} s budget`,
    };
  }

  // 2. warm-up, profiled for the peak tensor bytes (for long runs the probes were the warm-up, and the
  //    first timed run is profiled instead)
  const run = passRunner(impl, pass, full);
  const results: RunResult[] = [];
  if (!longRun) {
    progress(`warm-up at L=${opts.shape.L}`);
    const warm = await timedRun(run, true);
    checkTensors("warm-up", warm);
    rec.warmup_ms = round(warm.ms);
    rec.peak_tensor_bytes = warm.peakTensorBytes ?? null;
    results.push(warm);
  } else {
    rec.notes.push(`no separate warm-up: estimated ${seconds(est.estimateMs)} per run, the probes warmed up`);
  }

  // 3. timed runs, each only if predicted to end within the budget
  const times: number[] = [];
  for (let i = 0; i < opts.repeats; i++) {
    const predicted = i > 0 ? Math.max(...times) : longRun ? est.estimateMs : results[0].ms;
    if (elapsed() + predicted > budgetMs) break;
    progress(`timed run ${i + 1} of ${opts.repeats} (L=${opts.shape.L})`);
    const r = await timedRun(run, results.length === 0);
    if (r.peakTensorBytes !== undefined) rec.peak_tensor_bytes = r.peakTensorBytes;
    checkTensors(`run ${i + 1}`, r);
    times.push(r.ms);
    rec.times_ms.push(round(r.ms));
    results.push(r);
  }
  if (results.length) {
    const peaks = results.map((r) => r.peakRss).filter((x): x is number => x !== null);
    rec.peak_rss_bytes = peaks.length ? Math.max(...peaks) : null;
    rec.peak_rss_scope = results[0].peakRssScope;
    rec.rss_after_bytes = Math.max(...results.map((r) => r.rssAfter));
    rec.tensor_bytes_after = Math.max(...results.map((r) => r.tensorBytesAfter));
  }
  if (times.length === 0) {
    return {
      ...rec,
      status: "skipped",
      skipped: true,
      reason:
        `the warm-up took ${seconds(rec.warmup_ms!)} (estimate: ${seconds(est.estimateMs)}): one timed run ` +
        `would exceed the ${opts.budgetS} s budget`,
    };
  }
  if (times.length < opts.repeats) {
    rec.notes.push(
      `${times.length} of ${opts.repeats} timed runs: the next would exceed the ${opts.budgetS} s budget`,
    );
  }
  rec.runs = times.length;
  rec.median_ms = round(median(times));
  rec.min_ms = round(Math.min(...times));
  rec.bytes_per_s = Math.round(rec.min_bytes / (rec.median_ms / 1000));
  rec.vs_peer = rec.peer ? round(rec.peer.ms / rec.median_ms, 4) : null;
  return rec;
}

/** The child's job: every requested pass of one implementation on one backend. */
export async function runScanBench(opts: BenchOptions): Promise<void> {
  const { backend, impl } = opts.child!;
  const info = await initBackend({ backend, quiet: false });
  if (info.backend !== backend) throw new Error(`asked for the ${backend} backend, got ${info.backend}`);
  if (!availableScanImpls().includes(impl)) {
    await writeUnrunRecords(
      opts,
      backend,
      impl,
      opts.passes,
      "skipped",
      `${impl} is not available on ${backend} (available: ${availableScanImpls().join(", ")})`,
    );
    return;
  }
  const full = makeInputs(opts.shape);
  for (const pass of opts.passes) {
    const partial = baseRecord(
      opts,
      backend,
      impl,
      pass,
      await peerFigures(backend, info.device, opts.shape, pass),
    );
    let phase = "setup";
    const progress = (now: string) => {
      phase = now;
      reportState(partial, now);
    };
    let rec: ScanRecord;
    try {
      rec = await benchPass(opts, partial, full, progress);
    } catch (e) {
      console.error((e as Error).stack?.split("\n").slice(0, 8).join("\n"));
      rec = {
        ...partial,
        status: "failed",
        skipped: true,
        reason: `error during the ${phase}: ${(e as Error).message.split("\n")[0]}`,
      };
    }
    await appendRecord("scan", { ...rec }, opts.out);
    const what = rec.status === "ok"
      ? `median ${rec.median_ms!.toFixed(1)} ms, min ${rec.min_ms!.toFixed(1)} ms (${rec.runs} runs)`
      : `${rec.status}: ${rec.reason}`;
    console.error(`  ${backend} ${impl} ${pass}: ${what}`);
    for (const w of rec.warnings) console.error(`    warning: ${w}`);
  }
  tf.dispose(Object.values(full));
}
