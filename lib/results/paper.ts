/**
 * The paper's published numbers, as cited in ../shared/docs/PAPER.md (with its provenance tags: [P] read
 * in the paper, [S] secondary summaries). These are the reference values shown BESIDE our measurements
 * in tables and figures; they are never used as results.
 */

export const PAPER_DOMAINS = ["PG19", "Stories", "Books", "ArXiv", "Code"] as const;
export type PaperDomain = typeof PAPER_DOMAINS[number];

/** Which of our domains stands in for which of the paper's (lib/data/corpora/types.ts DOMAIN_NOTES). */
export const PAPER_DOMAIN_OF: Record<string, PaperDomain> = {
  books: "PG19",
  stories: "Stories",
  prose: "Books",
  latex: "ArXiv",
  code: "Code",
};

export interface PaperBpbRow {
  model: string;
  /** Our model family it corresponds to. */
  kind: "transformer" | "perceiver_ar" | "megabyte" | "mambabyte";
  context: number;
  bytes: string;
  bpb: Record<PaperDomain, number>;
  /** Provenance tags of cells that are not [P]. */
  tags?: Partial<Record<PaperDomain, string>>;
}

/** Table 1 (compute-matched, medium scale): test bits-per-byte [P]. */
export const PAPER_COMPUTE_MATCHED: PaperBpbRow[] = [
  {
    model: "Transformer-320M",
    kind: "transformer",
    context: 1024,
    bytes: "80B",
    bpb: { PG19: 1.057, Stories: 1.064, Books: 1.097, ArXiv: 0.816, Code: 0.575 },
  },
  {
    model: "PerceiverAR-248M",
    kind: "perceiver_ar",
    context: 8192,
    bytes: "80B",
    bpb: { PG19: 1.104, Stories: 1.070, Books: 1.104, ArXiv: 0.791, Code: 0.546 },
  },
  {
    model: "MegaByte-758M+262M (patch 8)",
    kind: "megabyte",
    context: 8192,
    bytes: "80B",
    bpb: { PG19: 1.000, Stories: 0.978, Books: 1.007, ArXiv: 0.678, Code: 0.411 },
  },
  {
    model: "MambaByte-353M",
    kind: "mambabyte",
    context: 8192,
    bytes: "30B",
    bpb: { PG19: 0.930, Stories: 0.908, Books: 0.966, ArXiv: 0.663, Code: 0.396 },
    tags: { Books: "[S]" },
  },
];

/** Noise robustness (PG19 word-perplexity increase), subword Mamba-1.03B vs MambaByte-972M [S]. */
export const PAPER_NOISE: { noise: string; p: number | null; subword: number; mambabyte: number }[] = [
  { noise: "drop", p: 0.05, subword: 16.9, mambabyte: 8.5 },
  { noise: "drop", p: 0.3, subword: 213.2, mambabyte: 31.7 },
  { noise: "repeat", p: 0.05, subword: 6.3, mambabyte: 6.2 },
  { noise: "repeat", p: 0.3, subword: 28.4, mambabyte: 26.6 },
  { noise: "antspeak", p: null, subword: 58300, mambabyte: 28.3 },
  { noise: "uppercase", p: 0.05, subword: 5.4, mambabyte: 1.6 },
  { noise: "uppercase", p: 0.3, subword: 18.3, mambabyte: 5.5 },
  { noise: "random_case", p: null, subword: 20.8, mambabyte: 7.7 },
  { noise: "swap", p: 0.05, subword: 29.0, mambabyte: 9.3 },
  { noise: "swap", p: 0.3, subword: 630.6, mambabyte: 28.7 },
];

/**
 * PG19 word-level perplexity, validation / test (PAPER.md result 2, [P/S]) of the two models of the noise
 * table: the clean perplexity its increases are relative to (which split the noise table used is not
 * stated [U]; figures that turn the increases into ratios say they assume the test split).
 */
export const PAPER_PG19_WORD_PPL = {
  mambabyte: { model: "MambaByte-972M", bytes: "150B", validation: 39.6, test: 33.0 },
  subword: { model: "Mamba-1.03B (subword)", bytes: "150B", validation: 40.7, test: 34.6 },
} as const;
