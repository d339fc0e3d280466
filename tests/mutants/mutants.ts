/**
 * The mutation check's list: plausible bugs, each one exact text replaced in one file, and the tests that
 * must fail when it is there. `deno task mutants` (tests/mutants/run.ts) applies them one at a time to a
 * scratch copy of the repository, runs the listed tests (in order, stopping at the first failure) and
 * prints which test caught each; a mutant no test catches fails the check. It runs outside CI (minutes).
 *
 * Rules of the list:
 * - `search` must occur exactly once in `file` (the check fails loudly when the code moved: update the
 *   entry with the code);
 * - the tests named must compare with an independent reference (fixtures of mamba_ssm, the PyTorch
 *   references, float64 finite differences, an uninterrupted run), not with the code itself;
 * - `build` runs after the replacement (a .wat kernel needs its bytes rebuilt);
 * - `backends` sets MAMBABYTE_TEST_BACKENDS for the tests (a WGSL or webgpu-only path needs "webgpu").
 * Keep it growing with every new component: a new kernel (the engine's included) brings its mutants.
 */

export interface TestSpec {
  /** A test file under tests/. */
  file: string;
  /** deno test --filter (a test name substring, or /regex/). */
  filter?: string;
  /** MAMBABYTE_TEST_BACKENDS for this run (default: the file's own default, cpu,wasm,webgpu). */
  backends?: string;
}

export interface Mutant {
  name: string;
  file: string;
  search: string;
  replace: string;
  /** Commands (argv, run in the scratch copy) after the replacement, e.g. rebuilding the .wat kernels. */
  build?: string[][];
  tests: TestSpec[];
}

const WASM_BUILD = [["deno", "run", "-A", "lib/kernels/wasm/build.ts"]];
const TRAIN3_WASM: TestSpec = { file: "train_reference_test.ts", filter: "wasm", backends: "wasm" };
const BASELINES_WASM: TestSpec = { file: "baselines_reference_test.ts", backends: "wasm" };

export const MUTANTS: Mutant[] = [
  // --- the language-model loss and the trainer -------------------------------------------------------
  {
    name: "target shift (nextTokenLoss predicts the input byte)",
    file: "lib/models/lm.ts",
    search: "return crossEntropy(logits, tf.slice(ids, [0, 1], [b, l])) as tf.Scalar;",
    replace: "return crossEntropy(logits, tf.slice(ids, [0, 0], [b, l])) as tf.Scalar;",
    tests: [TRAIN3_WASM, { file: "train_test.ts", filter: "nextTokenLoss", backends: "wasm" }],
  },
  {
    name: "AdamW bias correction off",
    file: "lib/train/adamw.ts",
    search: "const bc1 = 1 - beta1 ** this.step, bc2 = 1 - beta2 ** this.step;",
    replace: "const bc1 = 1, bc2 = 1;",
    tests: [TRAIN3_WASM],
  },
  {
    name: "weight decay on norms",
    file: "lib/models/mamba.ts",
    search: "return /(A_log|\\.D|norm(_f)?\\.weight|\\.bias)$/.test(name);",
    replace: "return /(A_log|\\.D|\\.bias)$/.test(name);",
    tests: [TRAIN3_WASM],
  },
  {
    name: "gradient clipping skipped",
    file: "lib/train/adamw.ts",
    search: "const scale = clipNorm > 0 && norm > clipNorm ? clipNorm / norm : 1;",
    replace: "const scale = 1;",
    tests: [TRAIN3_WASM],
  },
  {
    name: "resume restores the wrong data position (one batch ahead)",
    file: "lib/train/trainer.ts",
    search: "batcher.restore(state.batcher_rng, state.batcher_position);",
    replace: "batcher.seek(state.batcher_position + 1);",
    tests: [{ file: "train_test.ts", filter: "kill and resume equals", backends: "wasm" }],
  },
  // --- the baselines (attention, rotary, MegaByte) ------------------------------------------------------
  {
    name: "attention scale 1/sqrt(d_head) dropped",
    file: "lib/nn/attention.ts",
    search: "const scale = 1 / Math.sqrt(hd);",
    replace: "const scale = 1;",
    tests: [BASELINES_WASM],
  },
  {
    name: "rotary embedding rotates the other way (sign of sin)",
    file: "lib/nn/attention.ts",
    search: "tf.sub(tf.mul(x1, c), tf.mul(x2, s)), tf.add(tf.mul(x1, s), tf.mul(x2, c))",
    replace: "tf.add(tf.mul(x1, c), tf.mul(x2, s)), tf.sub(tf.mul(x2, c), tf.mul(x1, s))",
    tests: [BASELINES_WASM],
  },
  {
    name: "causal mask off by one (a query sees the next key)",
    file: "lib/nn/attention.ts",
    search: "const last = Math.min(m - 1, q0 + i - k0);",
    replace: "const last = Math.min(m - 1, q0 + i - k0 + 1);",
    tests: [BASELINES_WASM],
  },
  {
    name: "MegaByte global model not shifted by a patch (sees the patch it predicts)",
    file: "lib/models/megabyte.ts",
    search: "? tf.concat([startPatch(model, b), patchEmbed(model, tf.slice(ids, [0, 0], [b, l - P]))], 1)",
    replace: "? patchEmbed(model, ids)",
    tests: [BASELINES_WASM],
  },
  // --- the Mamba mixer ------------------------------------------------------------------------------------
  {
    name: "missing D skip (the model's fused scan path)",
    file: "lib/models/mamba.ts",
    search: '{ u: x, delta: dt, A, B: Bm, C: Cm, D: p("D"), z, deltaBias: p("dt_proj.bias") }',
    replace: '{ u: x, delta: dt, A, B: Bm, C: Cm, D: undefined, z, deltaBias: p("dt_proj.bias") }',
    tests: [TRAIN3_WASM],
  },
  {
    name: "softplus on delta missing",
    file: "lib/models/mamba.ts",
    search: "const scanOpts = { deltaSoftplus: true, initialState: state?.ssm, returnLastState };",
    replace: "const scanOpts = { deltaSoftplus: false, initialState: state?.ssm, returnLastState };",
    tests: [TRAIN3_WASM],
  },
  {
    name: "causal conv padded on the wrong side (op-built conv: webgpu)",
    file: "lib/nn/layers.ts",
    search: "const xp = tf.pad(x, [[0, 0], [k - 1, 0], [0, 0]]); // (b, l+k-1, e)",
    replace: "const xp = tf.pad(x, [[0, 0], [0, k - 1], [0, 0]]); // (b, l+k-1, e)",
    tests: [{
      file: "model_test.ts",
      filter: "logits, loss and every parameter gradient",
      backends: "webgpu",
    }],
  },
  {
    name: "missing D skip in the op-built scans",
    file: "lib/ssm/scan.ts",
    search: "let y = D ? tf.add(yScan, tf.mul(u, D.reshape([1, -1, 1]))) : yScan; // + D u",
    replace: "let y = yScan;",
    tests: [{ file: "scan_test.ts", filter: "golden", backends: "wasm" }],
  },
  // --- scans from a state, scan gradients -------------------------------------------------------------------
  {
    name: "scan from a state: the initial state is not decayed by the first step (parallel scan)",
    file: "lib/ssm/parallel.ts",
    search: "tf.mul(tf.slice(deltaA, [0, 0, 0, 0], [b, d, 1, n]), h0.reshape([b, d, 1, n])),",
    replace: "h0.reshape([b, d, 1, n]),",
    tests: [{ file: "scan_test.ts", filter: "scan from a state", backends: "wasm" }],
  },
  {
    name: "scan from a state: the fused WebAssembly kernel ignores the initial state",
    file: "lib/kernels/wasm/scan.ts",
    search: "padStates(mem, lay.h0 >> 2, x.initialState, b0, bc, D, N, Np);",
    replace: "padStates(mem, lay.h0 >> 2, undefined, b0, bc, D, N, Np);",
    tests: [{ file: "scan_test.ts", filter: "scan from a state", backends: "wasm" }],
  },
  {
    name: "fused scan backward: the sign of one initial-state gradient entry",
    file: "lib/kernels/wasm/scan.ts",
    search: "    unpadStates(mem, lay.dh0 >> 2, g.initialState, b0, n, D, N, Np);\n",
    replace:
      "    unpadStates(mem, lay.dh0 >> 2, g.initialState, b0, n, D, N, Np);\n    g.initialState[b0 * D * N + N - 1] *= -1;\n",
    tests: [{ file: "fused_scan_test.ts", filter: "finite differences", backends: "wasm" }],
  },
  {
    name: "fused scan backward: the sign of the delta-bias gradient (thread sums)",
    file: "lib/kernels/wasm/scan.ts",
    search: "g.deltaBias[d] += mem[db + d];",
    replace: "g.deltaBias[d] -= mem[db + d];",
    tests: [{ file: "fused_scan_test.ts", filter: "finite differences", backends: "wasm" }],
  },
  {
    name: "plain-JS scan twin: A's gradient misses the decay term's dt",
    file: "lib/kernels/wasm/scan_reference.ts",
    search: "gA[s] += gDecay * dt;",
    replace: "gA[s] += gDecay;",
    tests: [{ file: "fused_scan_test.ts", filter: "twin" }],
  },
  // --- decoding ----------------------------------------------------------------------------------------------
  {
    name: "decode kernel (WebAssembly ssmStep) reads the state out with B instead of C",
    file: "lib/kernels/wasm/decode.wat",
    search:
      "(local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $v) (v128.load (i32.add (local.get $C) (local.get $j))))))",
    replace:
      "(local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $v) (v128.load (i32.add (local.get $B) (local.get $j))))))",
    build: WASM_BUILD,
    tests: [{ file: "decode_reference_test.ts", filter: "JS stepper" }],
  },
  {
    name: "decode stepper: the D skip subtracted",
    file: "lib/decode/stepper.ts",
    search: "for (let c = 0; c < e; c++) y[xt + c] += L.D[c] * x[xt + c];",
    replace: "for (let c = 0; c < e; c++) y[xt + c] -= L.D[c] * x[xt + c];",
    tests: [{ file: "decode_reference_test.ts", filter: "JS stepper" }],
  },
  {
    name: "speculative verification (parallel pass) accepts a draft byte ranked beta",
    file: "lib/decode/speculative.ts",
    search: "if (rankOf(row, draft[a]) >= beta) break;",
    replace: "if (rankOf(row, draft[a]) > beta) break;",
    tests: [{ file: "decode_reference_test.ts", filter: "speculative", backends: "wasm" }],
  },
  // --- kernels of the webgpu path ------------------------------------------------------------------------
  {
    name: "scan from a state: the WGSL forward kernel starts from zero",
    file: "lib/kernels/webgpu/scan_wgsl.ts",
    search: 'var h = ${has.has("initialState") ? "initialState[idx]" : "0.0"};',
    replace: "var h = 0.0;",
    tests: [{ file: "scan_test.ts", filter: "scan from a state", backends: "webgpu" }],
  },
  {
    name: "WGSL GEMM fed an operand tfjs-webgpu stores as integers (embedding gradient)",
    file: "lib/kernels/tfjs/matmul_op.ts",
    search: 'return (map?.get(t.dataId)?.dtype ?? t.dtype) === "float32";',
    replace: "return true;",
    tests: [{ file: "scan_kernels_test.ts", filter: "cast from int32", backends: "webgpu" }],
  },
  // --- the native engine: its GEMM, its timing, the trainer's engine runner -------------------------------
  {
    name: "engine GEMM: the prefetch reads the current k step again instead of the next",
    file: "lib/kernels/webgpu/gemm.ts",
    search: "let kn = k0 + BK; // the next step's tiles, in flight during this step's products",
    replace: "let kn = k0; // the next step's tiles, in flight during this step's products",
    tests: [{ file: "engine_kernels_test.ts", filter: "GEMM layouts", backends: "webgpu" }],
  },
  {
    name: "engine timestamps: every slot resolved, written or not (hung the H200)",
    file: "lib/engine/backend.ts",
    search: "      for (const s of this.written) {",
    replace: "      for (let s = 0; s < this.slotsTimed; s++) {",
    tests: [{ file: "engine_timing_test.ts", backends: "webgpu" }],
  },
  {
    name: "trainer on the engine: AdamW's first moments not copied back before a checkpoint",
    file: "lib/train/steps.ts",
    search: "      assign(opt.m, st.m);",
    replace: "",
    tests: [{ file: "engine_checkpoint_test.ts", filter: "moves", backends: "webgpu" }],
  },
];
