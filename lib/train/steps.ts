/**
 * What runs the trainer's steps (trainer.ts keeps the loop: schedule, batches, log, checkpoints). Two
 * step runners, one interface:
 *  - "tfjs": the TF.js model's forward and gradients and AdamW in TF.js ops (every model; the reference);
 *  - "native": MambaByte and the subword Mamba (lib/engine/mamba.ts), and the byte and subword
 *    Transformers, PerceiverAR and MegaByte (lib/engine/transformer.ts), on the native engine (explicit kernels, buffers allocated
 *    once, one submission per step), on WebGPU when TF.js runs there and on the CPU (engine backend "wasm")
 *    when TF.js runs on cpu or wasm. Its losses come back every `window` steps, not per step, so the host
 *    never waits on a GPU between steps.
 * Either way the model's variables and the AdamW moments are the run's state: the native runner copies
 * its own into them (`sync`) before every checkpoint and at the end, so checkpoints are the same files and
 * a run moves between the two mid-way (tests/engine_checkpoint_test.ts).
 */
import * as tf from "@tensorflow/tfjs";
import { isMambaKind, type LanguageModel, nextTokenLoss, readParameters } from "../models/lm.ts";
import { asMamba } from "../models/registry.ts";
import { asTransformer } from "../models/transformer.ts";
import { asPerceiverAR } from "../models/perceiver_ar.ts";
import { asMegaByte } from "../models/megabyte.ts";
import { InputError } from "../io/errors.ts";
import { webgpuAdapter } from "../backend.ts";
import { MambaEngine } from "../engine/mamba.ts";
import { TransformerEngine } from "../engine/transformer.ts";
import type { ArenaEngine } from "../engine/training.ts";
import { wasmKernelsAvailable } from "../kernels/wasm/pool.ts";
import type { AdamW } from "./adamw.ts";

/**
 * Which code runs the training steps: "auto" is the native engine for Mamba models on a real GPU or on the
 * CPU (where the WebAssembly kernels run), else TF.js.
 */
export type TrainEngine = "auto" | "tfjs" | "native";
export const TRAIN_ENGINES: TrainEngine[] = ["auto", "tfjs", "native"];

/** One step's outcome. `notFinite` names what was NaN or infinite (the update was then not made). */
export interface StepOutcome {
  loss: number;
  gradNorm: number;
  notFinite?: string;
}

export interface StepRunner {
  /** "tfjs", or "native (webgpu: DEVICE)" / "native (wasm: WebAssembly SIMD, N threads)" */
  readonly name: string;
  /** Steps whose outcomes may be pending at once (the trainer settles them at least this often). */
  readonly window: number;
  /** GPU memory the runner allocated for training (native: every buffer of the engine; tfjs: unknown). */
  readonly gpuBytes?: number;
  /**
   * Where the native engine runs and whether it took a software adapter (absent for tfjs): a run's
   * evaluation (lib/eval/engine_scorer.ts) runs there too.
   */
  readonly native?: NativePlace;
  /** Makes (or queues) the update on ids (batch, length + 1) with learning rate lr. */
  step(ids: Int32Array, lr: number): Promise<{ outcome: Promise<StepOutcome> }>;
  /** Makes the outcomes of every step queued so far arrive (the engine reads them back). */
  flush(): Promise<void>;
  /** Copies the runner's parameters and AdamW state into the model's variables and `opt` (no-op for tfjs). */
  sync(): Promise<void>;
  dispose(): void;
}

/** The TF.js step: the model's loss and gradients (tf.variableGrads), then AdamW in TF.js ops. */
export function tfjsRunner(model: LanguageModel, opt: AdamW, batch: number, length: number): StepRunner {
  const names = [...model.params.keys()];
  const vars = names.map((n) => model.params.get(n)!);
  return {
    name: "tfjs",
    window: 1,
    async step(idsData, lr) {
      const ids = tf.tensor(idsData, [batch, length + 1], "int32"); // (b, l+1)
      const { value, grads } = tf.variableGrads(() => nextTokenLoss(model, ids), vars);
      try {
        const loss = (await value.data())[0];
        if (!Number.isFinite(loss)) {
          return { outcome: Promise.resolve({ loss, gradNorm: NaN, notFinite: `the loss (${loss})` }) };
        }
        const byName = new Map(names.map((n, i) => [n, grads[vars[i].name]]));
        try {
          const gradNorm = await opt.apply(byName, lr, { requireFinite: true });
          return { outcome: Promise.resolve({ loss, gradNorm }) };
        } catch (e) {
          if (!(e instanceof RangeError)) throw e;
          return { outcome: Promise.resolve({ loss, gradNorm: NaN, notFinite: "the gradient norm" }) };
        }
      } finally {
        tf.dispose([ids, value, ...Object.values(grads)]);
      }
    },
    flush: () => Promise.resolve(),
    sync: () => Promise.resolve(),
    dispose() {},
  };
}

/**
 * The native engine's step for any model family (Mamba on engine/mamba.ts; the Transformers, PerceiverAR
 * and MegaByte on engine/transformer.ts), starting from the model's variables and `opt`'s moments and step
 * count (a fresh run, or one resumed from any checkpoint).
 */
export async function nativeRunner(
  model: LanguageModel,
  opt: AdamW,
  o: { batch: number; length: number; backend: NativeBackend; window?: number; allowSoftwareGpu?: boolean },
): Promise<StepRunner> {
  const { beta1, beta2, eps, weightDecay, clipNorm } = opt.config;
  const window = o.window ?? 16;
  const common = {
    params: await readParameters(model),
    batch: o.batch,
    length: o.length,
    backend: o.backend,
    optimizer: { beta1, beta2, eps, weightDecay, clipNorm },
    readbackEvery: window,
    allowSoftwareGpu: o.allowSoftwareGpu,
  };
  const engine: ArenaEngine = isMambaKind(model.kind)
    ? await MambaEngine.create({ ...common, config: asMamba(model).config })
    : model.kind === "perceiver_ar"
    ? await TransformerEngine.create({
      ...common,
      config: asPerceiverAR(model).config,
      latents: asPerceiverAR(model).config.num_latents,
    })
    : model.kind === "megabyte"
    ? await TransformerEngine.create({ ...common, config: asMegaByte(model).config })
    : await TransformerEngine.create({ ...common, config: asTransformer(model).config });
  try {
    const [m, v] = await Promise.all([readParameters({ params: opt.m }), readParameters({ params: opt.v })]);
    await engine.setState({ m, v, step: opt.step });
  } catch (e) {
    engine.destroy();
    throw e;
  }
  const assign = (vars: Map<string, tf.Variable>, values: Map<string, Float32Array>) =>
    tf.tidy(() => {
      for (const [n, v] of vars) v.assign(tf.tensor(values.get(n)!, v.shape, "float32"));
    });
  return {
    name: `native (${o.backend}: ${engine.backend.device})`,
    window,
    native: { backend: o.backend, allowSoftwareGpu: !!o.allowSoftwareGpu },
    ...(o.backend === "webgpu" ? { gpuBytes: engine.backend.allocatedBytes } : {}),
    async step(ids, lr) {
      const { stats } = await engine.step(ids, lr);
      return {
        outcome: stats.then((s) => ({
          loss: s.loss,
          gradNorm: s.gradNorm,
          ...(s.halted
            ? { notFinite: Number.isFinite(s.loss) ? "the gradient norm" : `the loss (${s.loss})` }
            : {}),
        })),
      };
    },
    flush: () => engine.flush(),
    async sync() {
      assign(model.params, await engine.parameters());
      const st = await engine.optimizerState();
      assign(opt.m, st.m);
      assign(opt.v, st.v);
      opt.step = st.step;
    },
    dispose: () => engine.destroy(),
  };
}

/** Where the native engine runs: the GPU through WebGPU, or the CPU through the WebAssembly kernels. */
export type NativeBackend = "webgpu" | "wasm";
/** Where a native runner runs: its backend, and whether a software WebGPU adapter was accepted. */
export interface NativePlace {
  backend: NativeBackend;
  allowSoftwareGpu: boolean;
}

/**
 * The native engine's backend for TF.js's current backend: webgpu on webgpu, wasm on cpu and wasm (the CPU
 * engine; undefined where the WebAssembly kernels cannot run).
 */
export function nativeBackendFor(tfBackend: string): NativeBackend | undefined {
  if (tfBackend === "webgpu") return "webgpu";
  return (tfBackend === "cpu" || tfBackend === "wasm") && wasmKernelsAvailable() ? "wasm" : undefined;
}

/**
 * The runner `engine` names for `model`: "native" (every family) runs where TF.js runs (`nativeBackendFor`, or `backend` when given), on WebGPU taking any adapter, a software one
 * included (asked for by name, as --backend webgpu is); "auto" picks native for a Mamba model on the CPU
 * and on WebGPU with a real (not software) adapter, else tfjs.
 */
export async function createRunner(
  engine: TrainEngine,
  model: LanguageModel,
  opt: AdamW,
  o: { batch: number; length: number; backend?: NativeBackend },
): Promise<StepRunner> {
  const isMamba = isMambaKind(model.kind);
  const backend = o.backend ?? nativeBackendFor(tf.getBackend());
  if (engine === "native" && !backend) {
    throw new InputError(
      "--engine",
      "engine",
      `--engine native: the engine runs on webgpu, or on the CPU with WebAssembly SIMD, which this runtime lacks`,
    );
  }
  const native = engine === "native" ||
    (engine === "auto" && isMamba && backend !== undefined &&
      (backend === "wasm" || (await webgpuAdapter())?.fallback === false));
  return native
    ? await nativeRunner(model, opt, { ...o, backend: backend!, allowSoftwareGpu: engine === "native" })
    : tfjsRunner(model, opt, o.batch, o.length);
}
