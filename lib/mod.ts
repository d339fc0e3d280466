/**
 * The lab's public API: what notebooks and scripts import (`import * as mb from "../lib/mod.ts"`). One
 * name per concept, grouped below; every name's documentation is on its declaration. The command line
 * (lib/cli.ts) and the benchmarks import the rooms directly.
 *
 * @example Train a small MambaByte on a corpus sample, score it, generate from it
 * ```ts
 * import * as mb from "../lib/mod.ts";
 * await mb.initBackend({ quiet: true });
 * const data = await mb.dataLocation("smoke"); // the tracked sample: no download
 * const model = mb.createModel("mambabyte", { d_model: 64, n_layer: 2 }, 0);
 * await mb.train(model, await mb.readDomainSplit(data, "books", "train"), {
 *   steps: 30, batch: 4, length: 128, lr: 3e-3, warmup: 3, seed: 0,
 * });
 * const test = (await mb.readDomainSplit(data, "books", "test")).subarray(0, 4096);
 * const { bits_per_byte } = await mb.scoreText(model, test, { window: 512 });
 * const bytes = await mb.generate(mb.asMamba(model), new TextEncoder().encode("The "), 40);
 * ```
 */

// ---------------------------------------------------------------------------------------------------
// Backend, scales and where things are

export { backendInfo, initBackend, tf, webgpuAdapter } from "./backend.ts";
export type { BackendInfo, BackendName } from "./backend.ts";
export { currentScale, SCALES } from "./scales.ts";
export type { ScaleName } from "./scales.ts";
export { RESULTS_DIR, resultsDir, runsDir } from "./paths.ts";

// ---------------------------------------------------------------------------------------------------
// Data: corpora, splits, byte batches, the subword tokenizer, noise

export {
  addNoise,
  addNoiseText,
  ByteBatcher,
  ByteBPE,
  byteHistogram,
  countWords,
  dataLocation,
  DOMAIN_NOTES,
  DOMAINS,
  domainSummary,
  editDistance,
  evalWindows,
  NOISE_DEFAULT_P,
  NOISE_DEFINITIONS,
  NOISE_KINDS,
  readCorpusManifest,
  readDocuments,
  readDomainSplit,
  readSplit,
  slidingWindows,
  trainBpe,
} from "./data/mod.ts";
export type {
  CorpusManifest,
  DataLocation,
  Domain,
  DomainRow,
  NoiseKind,
  SlidingWindow,
} from "./data/mod.ts";

// ---------------------------------------------------------------------------------------------------
// Models: every family behind one interface; the Mamba internals in the `mamba` namespace

export { asMamba, createModel, loadModel, saveModel } from "./models/mod.ts";
export { findTrainedModel, findTrainedPair, type TrainedModelPlace } from "./models/trained.ts";
export { countParameters, disposeModel, MODEL_KINDS, nextTokenLoss, TOKEN_UNIT } from "./models/lm.ts";
export type { LanguageModel, ModelKind } from "./models/lm.ts";
export { presetConfig, PRESETS } from "./models/presets.ts";
/** The Mamba block and LM as plain functions (forward, forward from a state, step, init): mamba.ts. */
export * as mamba from "./models/mamba.ts";
export type { MambaLM, MambaState } from "./models/mamba.ts";
export { mambaByteConfig } from "./models/pretrained.ts";
export { parseMambaConfig, readMambaConfig } from "./models/mamba_config.ts";
export { mixerShapeTable, parameterBreakdown } from "./models/describe.ts";

// ---------------------------------------------------------------------------------------------------
// The selective scan

export {
  availableScanImpls,
  defaultScanImpl,
  SCAN_IMPL_DESCRIPTIONS,
  SCAN_IMPLS,
  selectiveScan,
  setDefaultScanImpl,
} from "./ssm/mod.ts";
export type { ScanImpl, ScanOptions } from "./ssm/mod.ts";

// ---------------------------------------------------------------------------------------------------
// Training and experiments

export { train } from "./train/trainer.ts";
export type { TrainerConfig, TrainerResult, TrainLogEntry } from "./train/trainer.ts";
// the native engine: `train(model, data, { engine: "native" })` on WebGPU, or driven step by step
export type { TrainEngine } from "./train/steps.ts";
export { MambaEngine } from "./engine/mamba.ts";
export { MambaDecoder } from "./engine/decode.ts";
export type { MambaDecoderOptions, Sampling } from "./engine/decode.ts";
export { EngineSpeculative } from "./engine/speculative.ts";
export type { EngineSpeculativeOptions } from "./engine/speculative.ts";
export type { MambaEngineOptions, StepStats } from "./engine/mamba.ts";
export { runExperiment } from "./runs/experiment.ts";
export type { RunSpec } from "./runs/experiment.ts";
export { planRuns, readPlan } from "./runs/plan.ts";

// ---------------------------------------------------------------------------------------------------
// Evaluation

export { perTokenBits, scoreText } from "./eval/score.ts";
export {
  evaluateExtrapolation,
  EXTRAPOLATION_MULTIPLES,
  extrapolationRecords,
} from "./eval/extrapolation.ts";
export { evaluateNoise, NOISE_SETTINGS } from "./eval/noise.ts";
export { extrapolationStage, noiseStage } from "./runs/stages.ts";
export { referenceCheckpoint, referenceExpected } from "./eval/reference.ts";

// ---------------------------------------------------------------------------------------------------
// Decoding

export { generate, generateBatch, generateTokens } from "./decode/sample.ts";
export { greedyDecode, originHtml, speculativeDecode } from "./decode/speculative.ts";
export type { SpeculativeOptions, SpeculativeResult, SpeculativeStats } from "./decode/speculative.ts";
export { RecurrentSession } from "./decode/session.ts";
export { MambaStepper } from "./decode/stepper.ts";

// ---------------------------------------------------------------------------------------------------
// Records, tables and figures

export { appendRecord, readRecords } from "./results/store.ts";
export type {
  ExtrapolationRecord,
  ExtrapolationResult,
  NoiseRecord,
  NoiseResult,
  RunRecord,
} from "./results/records.ts";
export { computeMatchedTable, latestRuns, matchedRows } from "./results/compute_matched.ts";
export { tableMarkdown } from "./results/tables.ts";
/** The paper's published numbers (tables 1 and 2, noise), for comparisons: results/paper.ts. */
export * as paper from "./results/paper.ts";
export { layout, showFigure, showTable } from "./plot/display.ts";
export { LiveTable, liveTable, LiveText, liveText, LiveTraining, liveTraining } from "./plot/live.ts";
export type { LiveTableOptions, LiveTextOptions, LiveTrainingOptions } from "./plot/live.ts";
export { exportFigure, renderFigure } from "./plot/export.ts";
/** Every registered figure and table of the project, by name (`figures.showRegistered(name, ...)`). */
export * as figures from "./plot/figures/mod.ts";
export { computeMatchedFigure, splitByLadder } from "./plot/figures/compute_matched.ts";
export { readSafetensors, writeSafetensors } from "./io/safetensors.ts";
