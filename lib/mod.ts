/**
 * The public API: what notebooks and scripts import. Dependencies point one way:
 * notebooks -> lib/mod.ts -> {eval, decode, train} -> models -> ssm -> backend.
 */

export { backendInfo, initBackend, tf, webgpuAdapter } from "./backend.ts";
export type { BackendInfo, BackendName } from "./backend.ts";
export {
  availableScanImpls,
  defaultScanImpl,
  SCAN_IMPL_DESCRIPTIONS,
  SCAN_IMPLS,
  selectiveScan,
  setDefaultScanImpl,
} from "./ssm/mod.ts";
export type { ScanImpl, ScanOptions } from "./ssm/mod.ts";
export * as mamba from "./models/mamba.ts";
export { forward, initMambaLM, prefill, step } from "./models/mamba.ts";
export type { MambaLM, MambaState } from "./models/mamba.ts";
export { loadPretrained, mambaByteConfig, saveMambaLM } from "./models/pretrained.ts";
export { mixerShapeTable, parameterBreakdown } from "./models/describe.ts";
export { parseMambaConfig, readMambaConfig } from "./models/mamba_config.ts";
export { readSafetensors, writeSafetensors } from "./io/safetensors.ts";
export { ByteBatcher, countWords, readSplit } from "./data/bytes.ts";
export { trainBytes } from "./train/train.ts";
export { perByteBits, scoreBytes } from "./eval/bpb.ts";
export { generate, generateBatch, generateTokens } from "./decode/sample.ts";
export { greedyDecode, originHtml, speculativeDecode } from "./decode/speculative.ts";
export { RecurrentSession } from "./decode/session.ts";
export type { SpeculativeOptions, SpeculativeResult, SpeculativeStats } from "./decode/speculative.ts";
export { MambaStepper } from "./decode/stepper.ts";
export { appendRecord, readRecords } from "./results/store.ts";
export { currentScale, SCALES } from "./scales.ts";
export type { ScaleName } from "./scales.ts";
export { layout, showFigure, showTable } from "./plot/display.ts";
export { exportFigure, renderFigure } from "./plot/export.ts";
export * as data from "./data/mod.ts";
export {
  addNoise,
  addNoiseText,
  ByteBPE,
  byteHistogram,
  dataLocation,
  DOMAIN_NOTES,
  DOMAINS,
  domainSummary,
  evalWindows,
  NOISE_DEFAULT_P,
  NOISE_DEFINITIONS,
  NOISE_KINDS,
  readCorpusManifest,
  readDocuments,
  readDomainSplit,
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
export { countParameters, MODEL_KINDS, nextTokenLoss, TOKEN_UNIT } from "./models/lm.ts";
export type { LanguageModel, ModelKind } from "./models/lm.ts";
export { createModel, loadModel, saveModel } from "./models/mod.ts";
export { presetConfig, PRESETS } from "./models/presets.ts";
export { train } from "./train/trainer.ts";
export type { TrainerConfig, TrainLogEntry } from "./train/trainer.ts";
export { loadTrained, runExperiment } from "./runs/experiment.ts";
export type { RunSpec } from "./runs/experiment.ts";
export type {
  ExtrapolationRecord,
  ExtrapolationResult,
  NoiseRecord,
  NoiseResult,
  RunRecord,
} from "./results/records.ts";
export { planRuns, readPlan } from "./runs/plan.ts";
export { scoreText } from "./eval/score.ts";
export { computeMatchedTable, latestRuns, matchedRows } from "./results/compute_matched.ts";
export { tableMarkdown } from "./results/tables.ts";
export * as paper from "./results/paper.ts";
export {
  evaluateExtrapolation,
  EXTRAPOLATION_MULTIPLES,
  extrapolationRecords,
} from "./eval/extrapolation.ts";
export { evaluateNoise, NOISE_SETTINGS } from "./eval/noise.ts";
export { extrapolationStage, noiseStage } from "./runs/stages.ts";
export { asMamba, mambaAsLanguageModel } from "./models/registry.ts";
export * as figures from "./plot/figures/mod.ts";
export { computeMatchedFigure } from "./plot/figures/compute_matched.ts";
export { referenceCheckpoint, referenceExpected } from "./eval/reference.ts";
