/**
 * `trainBytes`: the trainer (trainer.ts) applied to a MambaLM on bytes — the short form notebooks and
 * benchmarks use. Everything (schedule, clipping, checkpoints, resume) is in trainer.ts.
 */
import type { MambaLM } from "../models/mamba.ts";
import { mambaAsLanguageModel } from "../models/registry.ts";
import { train, type TrainerConfig, type TrainerResult, type TrainLogEntry } from "./trainer.ts";

export type TrainConfig = TrainerConfig;
export type { TrainLogEntry };
export type TrainResult = TrainerResult;

/** Trains `model` in place on `data` (the training split as bytes). */
export function trainBytes(model: MambaLM, data: Uint8Array, cfg: TrainConfig): Promise<TrainResult> {
  return train(mambaAsLanguageModel(model), data, cfg);
}
