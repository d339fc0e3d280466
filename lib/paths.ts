/**
 * Where things live in the repository, computed in this one place (every other module imports these).
 * Paths are absolute; REPO_ROOT ends with "/".
 */

/** The repository's root directory (this file is lib/paths.ts), with a trailing slash. */
export const REPO_ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);

/** data/: recipes, manifests, tracked samples, published records. */
export const DATA_DIR = `${REPO_ROOT}data`;
/** The published records (JSONL), from which every table and figure is built. */
export const RESULTS_DIR = `${DATA_DIR}/results/`;
/**
 * Local work that is never committed (git ignores it): a reproduction's own results, figures and executed
 * notebooks (`deno task reproduce`), compared with the published records in data/results.
 */
export const LOCAL_DIR = `${DATA_DIR}/local`;
export const LOCAL_RESULTS_DIR = `${LOCAL_DIR}/results/`;
/** A local reproduction's run directories (checkpoints, logs, trained models). */
export const LOCAL_RUNS_DIR = `${LOCAL_DIR}/runs`;
/** Peer measurements (PyTorch, mamba_ssm, llama.cpp) that benchmarks compare with. */
export const ANCHORS_DIR = `${DATA_DIR}/anchors`;
/** The tracked sample of every corpus domain (tests and the smoke scale). */
export const SAMPLES_DIR = `${DATA_DIR}/samples`;
/** The built corpora (ignored by git; `deno task data`). */
export const CORPORA_DIR = `${DATA_DIR}/corpora`;
/** Training runs' directories: checkpoints, logs, trained models (ignored by git). */
export const RUNS_DIR = `${DATA_DIR}/checkpoints/runs`;
/**
 * Trained models committed in half precision (`export --format f16`), as MODELS_DIR/SCALE/DOMAIN/ENTRY:
 * the ones the notebooks decode and score, so a clone runs them without training or a GPU.
 */
export const MODELS_DIR = `${DATA_DIR}/models`;
/** Exported figures and tables. */
export const FIGURES_DIR = `${REPO_ROOT}figures`;
/** The notebooks. */
export const NOTEBOOKS_DIR = `${REPO_ROOT}notebooks`;
/** Reference outputs of mamba_ssm (and the baselines' PyTorch references) that golden tests compare with. */
export const REFERENCE_FIXTURES = `${REPO_ROOT}tests/fixtures/reference/`;

/**
 * The results directory that experiments' records are read from: MAMBABYTE_RESULTS when set (a
 * reproduction's local records, see LOCAL_RESULTS_DIR), else the published records. Benchmarks always
 * read the published records (RESULTS_DIR).
 */
export function resultsDir(): string {
  return Deno.env.get("MAMBABYTE_RESULTS") || RESULTS_DIR;
}

/** The run directories trained models are read from: MAMBABYTE_RUNS when set, else RUNS_DIR. */
export function runsDir(): string {
  return Deno.env.get("MAMBABYTE_RUNS") || RUNS_DIR;
}

/** `path` relative to the repository root (for records and messages), or unchanged when outside it. */
export function repoRelative(path: string): string {
  return path.startsWith(REPO_ROOT) ? path.slice(REPO_ROOT.length) : path;
}
