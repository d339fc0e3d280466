/**
 * Where a notebook finds a trained model of a plan entry: the committed half-precision copies in
 * data/models/SCALE/DOMAIN/ENTRY (`export --format f16`; the large scale's, trained on a GPU), else a
 * local reproduction's run directory (runsDir()/compute-matched/SCALE/DOMAIN/ENTRY/model), the largest
 * scale first; where an entry's seed-0 model is absent, a model of another seed of it (ENTRY_seed1,
 * ENTRY_seed2: the plan's extra seeds at the top budget). Undefined when none exists: the notebooks then say
 * they fall back to an untrained model.
 */
import { MODELS_DIR, repoRelative, runsDir } from "../paths.ts";
import { pathExists } from "../io/atomic.ts";

export interface TrainedModelPlace {
  dir: string;
  scale: string;
  /** "committed, float16" or "local run". */
  source: string;
  /** e.g. "MambaByte, large scale, books (committed, float16)": what a notebook prints. */
  label: string;
}

/**
 * The seeds of an entry tried after seed 0: the extra seeds the plan names ENTRY_seedN (lib/runs/plan.ts);
 * a scale with more would need more here.
 */
const SEEDS_TRIED = [1, 2];

/** The scales searched, largest first (smoke's models are a pipeline check, never shown as trained). */
export const TRAINED_SCALES = ["large", "gpu", "small"];

/** `entries`: one plan entry, or several that serve alike (tried in order at each scale). */
export async function findTrainedModel(
  entries: string | string[],
  o: { domain?: string; scales?: string[]; modelsDir?: string; runs?: string } = {},
): Promise<TrainedModelPlace | undefined> {
  const domain = o.domain ?? "books";
  for (const scale of o.scales ?? TRAINED_SCALES) {
    for (const entry of typeof entries === "string" ? [entries] : entries) {
      // an entry's other seeds serve alike (same configuration and budget), after the entry itself: the
      // label names the one found
      for (const run of [entry, ...SEEDS_TRIED.map((s) => `${entry}_seed${s}`)]) {
        const found = await findAt(run, scale, domain, o);
        if (found) return found;
      }
    }
  }
  return undefined;
}

/**
 * Two models that serve together (a verifier and its drafter), at the largest scale that has both: e.g.
 * a large MambaByte without a large drafter gives way to a smaller scale's complete pair.
 */
export async function findTrainedPair(
  first: string | string[],
  second: string | string[],
  o: { domain?: string; scales?: string[]; modelsDir?: string; runs?: string } = {},
): Promise<[TrainedModelPlace, TrainedModelPlace] | undefined> {
  for (const scale of o.scales ?? TRAINED_SCALES) {
    const a = await findTrainedModel(first, { ...o, scales: [scale] });
    const b = a && await findTrainedModel(second, { ...o, scales: [scale] });
    if (a && b) return [a, b];
  }
  return undefined;
}

async function findAt(
  entry: string,
  scale: string,
  domain: string,
  o: { modelsDir?: string; runs?: string },
): Promise<TrainedModelPlace | undefined> {
  const places: [string, string][] = [
    [`${o.modelsDir ?? MODELS_DIR}/${scale}/${domain}/${entry}`, "committed, float16"],
    [`${o.runs ?? runsDir()}/compute-matched/${scale}/${domain}/${entry}/model`, "local run"],
  ];
  for (const [dir, source] of places) {
    if (await pathExists(`${dir}/config.json`)) {
      return {
        dir,
        scale,
        source,
        label: `${entry}, ${scale} scale, ${domain} (${source}: ${repoRelative(dir)})`,
      };
    }
  }
  return undefined;
}
