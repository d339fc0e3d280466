/**
 * The data API: byte batches and evaluation windows, the corpora (manifest, domains), the byte-level BPE
 * tokenizer and the six noise transforms. `deno task data` (lib/data/corpora/main.ts) builds the corpora.
 */
export {
  ByteBatcher,
  countWords,
  evalWindows,
  listSplitFiles,
  readDocuments,
  readSplit,
  slidingWindows,
} from "./bytes.ts";
export type { SlidingWindow } from "./bytes.ts";
export { BPE_FORMAT, ByteBPE, MAX_PIECE_BYTES, preSplit, subsample, trainBpe } from "./bpe.ts";
export type { BpeJson, TrainBpeOptions } from "./bpe.ts";
export {
  addNoise,
  addNoiseText,
  charBoundaries,
  editDistance,
  NOISE_DEFAULT_P,
  NOISE_DEFINITIONS,
  NOISE_KINDS,
} from "./noise.ts";
export type { NoiseKind } from "./noise.ts";
export { byteHistogram, dataLocation, domainSummary, readDomainSplit } from "./describe.ts";
export type { DataLocation, DomainRow } from "./describe.ts";
export { readManifest as readCorpusManifest, verifyCorpus } from "./corpora/manifest.ts";
export { DOMAIN_NOTES, DOMAINS, SPLITS } from "./corpora/types.ts";
export type { Domain, Manifest as CorpusManifest, ManifestDocument, Split } from "./corpora/types.ts";
