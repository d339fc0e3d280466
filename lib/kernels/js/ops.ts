/**
 * The op set a native training engine composes (lib/engine), each op given as (parameters, named
 * buffers): implemented here by the plain-JS twins (buffers are typed arrays), in ../webgpu/ops.ts by
 * WGSL pass sequences (buffers are GPU buffer views), later by WebAssembly kernels for the CPU engine.
 * The twins are the reference every other implementation is tested against. No model knowledge: shapes
 * and layouts come in the parameters.
 */
import * as attention from "./attention.ts";
import * as conv from "./conv.ts";
import * as decode from "./decode.ts";
import * as elementwise from "./elementwise.ts";
import * as gemm from "./gemm.ts";
import * as norm from "./norm.ts";
import * as optim from "./optim.ts";
import * as scan from "./scan.ts";
import * as speculate from "./speculate.ts";
import * as transformer from "./transformer.ts";
import * as xent from "./xent.ts";

type ScanIn<B> = { u: B; delta: B; A: B; bct: B; D?: B; z?: B; deltaBias?: B };

export interface EngineOps<B> {
  embedding(p: norm.EmbeddingParams, b: { ids: B; table: B; out: B }): void;
  embeddingBackward(p: norm.EmbeddingGradParams, b: { order: B; rowStart: B; dOut: B; dTable: B }): void;
  addRmsNorm(p: norm.NormParams, b: { x: B; delta?: B; res?: B; w: B; y: B; rstd: B }): void;
  rmsNormBackward(p: norm.NormGradParams, b: { x: B; w: B; rstd: B; dy: B; dx: B; dw: B }): void;
  gemm(p: gemm.GemmSpec, b: { a: B; b: B; c: B }): void;
  conv(p: conv.ConvParams, b: { x: B; w: B; bias?: B; y: B }): void;
  convBackward(p: conv.ConvParams, b: { x: B; w: B; bias?: B; dy: B; dx: B; dw: B; dbias?: B }): void;
  packBC(p: scan.PackParams, b: { x: B; bct: B }): void;
  scanForward(p: scan.ScanParams, b: ScanIn<B> & { y: B; last: B }): void;
  scanBackward(
    p: scan.ScanParams & scan.PackedBC,
    b: ScanIn<B> & { dy: B; du: B; ddelta: B; dA: B; dD?: B; dz?: B; dDeltaBias?: B; dbc: B },
  ): void;
  negExp(p: elementwise.RangeParams, b: { x: B; y: B }): void;
  mulInPlace(p: elementwise.RangeParams, b: { x: B; y: B }): void;
  copy(p: elementwise.CopyParams, b: { src: B; dst: B }): void;
  crossEntropy(p: xent.CrossEntropyParams, b: { logits: B; ids: B; loss: B }): void;
  sumSquares(p: optim.SumSquaresParams, b: { x: B; partials: B }): void;
  finalizeStep(p: optim.FinalizeParams, b: { partials: B; loss: B; hyper: B; state: B; history: B }): void;
  adamw(p: optim.AdamWParams, b: { param: B; grad: B; m: B; v: B; hyper: B; state: B }): void;
  // decoding (lib/engine/decode.ts): one token per sequence from a state held in buffers
  convStep(p: decode.ConvStepParams, b: { x: B; window: B; w: B; bias?: B; y: B }): void;
  ssmStep(
    p: decode.SsmStepParams,
    b: { u: B; dtW: B; deltaBias?: B; A: B; xdbl: B; D?: B; z?: B; h: B; y: B },
  ): void;
  argmax(p: decode.ArgmaxParams, b: { logits: B; ids: B }): void;
  gemvConv(p: decode.GemvConvParams, b: decode.GemvConvBuffers<B>): void;
  sample(p: decode.SampleParams, b: { logits: B; u: B; ids: B }): void;
  normGemv(p: decode.NormGemvParams, b: { x: B; w: B; W: B; c: B }): void;
  convScan(p: decode.ConvScanParams, b: { x: B; window: B; snaps: B; w: B; bias?: B; y: B }): void;
  ssmScan(
    p: decode.SsmScanParams,
    b: { u: B; dtW: B; deltaBias?: B; A: B; xdbl: B; D?: B; z?: B; h: B; snaps: B; y: B },
  ): void;
  // speculative rounds on the device (lib/engine/speculative.ts)
  draftChoose(
    p: speculate.DraftChooseParams,
    b: { logits: B; table: B; lens: B; ctl: B; draft: B; ids: B },
  ): void;
  acceptDraft(p: speculate.AcceptParams, b: { first: B; rows: B; draft: B; ctl: B; out: B; ids: B }): void;
  copyIndexed(p: speculate.CopyIndexedParams, b: { src: B; dst: B; ctl: B }): void;
  // the Transformer family (issue 5/6): causal attention by absolute position, tiled, scores never stored
  attention(p: attention.AttentionParams, b: { q: B; k: B; v: B; o: B; lse: B }): void;
  decodeAttention(p: attention.DecodeAttentionParams, b: { q: B; kv: B; ctl: B; o: B }): void;
  attentionBackward(
    p: attention.AttentionParams,
    b: { q: B; k: B; v: B; o: B; lse: B; dO: B; dq: B; dk: B; dv: B },
  ): void;
  layerNorm(p: transformer.LayerNormParams, b: { x: B; w: B; bias: B; y: B; mean: B; rstd: B }): void;
  layerNormBackward(
    p: transformer.LayerNormGradParams,
    b: { x: B; w: B; mean: B; rstd: B; dy: B; dx: B; dw: B; db: B },
  ): void;
  rope(p: transformer.RopeParams, b: { x: B; cos: B; sin: B }): void;
  fill(p: elementwise.FillParams, b: { x: B }): void;
  gelu(p: transformer.GeluParams, b: { x: B; y: B }): void;
  geluBackward(p: transformer.GeluParams, b: { x: B; d: B }): void;
}

export type JsBuffer = Float32Array | Int32Array;

/**
 * The twins as an EngineOps whose calls are recorded, not run: each call appends a closure to the
 * program being built (`record`), which the engine then replays every step with no allocation.
 */
/** Records one op: its label, its work, and (products) its floating-point operations. */
export type OpRecorder = (label: string, run: () => void, flops?: number) => void;

/** 2 M N K per product of a GemmSpec, times its batch. */
export const gemmFlops = (p: gemm.GemmSpec) => 2 * p.M * p.N * p.K * (p.batch ?? 1);

export function jsOps(record: OpRecorder): EngineOps<JsBuffer> {
  // deno-lint-ignore no-explicit-any
  const op =
    <P>(label: string, twin: (p: P, b: any) => void) => (p: P, b: Record<string, JsBuffer | undefined>) =>
      record(label, () => twin(p, b));
  return {
    embedding: op("embedding", norm.embedding),
    embeddingBackward: op("embeddingBackward", norm.embeddingBackward),
    addRmsNorm: op("addRmsNorm", norm.addRmsNorm),
    rmsNormBackward: op("rmsNormBackward", norm.rmsNormBackward),
    gemm: (p, b) => record(p.name ? `gemm ${p.name}` : "gemm", () => gemm.gemm(p, b as never), gemmFlops(p)),
    conv: op("conv", conv.conv),
    convBackward: op("convBackward", conv.convBackward),
    packBC: op("packBC", scan.packBC),
    scanForward: op("scanForward", scan.scanForward),
    scanBackward: op("scanBackward", scan.scanBackward),
    negExp: op("negExp", elementwise.negExp),
    mulInPlace: op("mulInPlace", elementwise.mulInPlace),
    copy: op("copy", elementwise.copy),
    crossEntropy: op("crossEntropy", xent.crossEntropy),
    sumSquares: op("sumSquares", optim.sumSquares),
    finalizeStep: op("finalizeStep", optim.finalizeStep),
    adamw: op("adamw", optim.adamw),
    convStep: op("convStep", decode.convStep),
    ssmStep: op("ssmStep", decode.ssmStep),
    argmax: op("argmax", decode.argmax),
    gemvConv: op("gemvConv", decode.gemvConv),
    sample: op("sample", decode.sample),
    normGemv: op("normGemv", decode.normGemv),
    convScan: op("convScan", decode.convScan),
    ssmScan: op("ssmScan", decode.ssmScan),
    draftChoose: op("draftChoose", speculate.draftChoose),
    acceptDraft: op("acceptDraft", speculate.acceptDraft),
    copyIndexed: op("copyIndexed", speculate.copyIndexed),
    attention: op("attention", attention.attention),
    decodeAttention: op("decodeAttention", attention.decodeAttention),
    attentionBackward: op("attentionBackward", attention.attentionBackward),
    layerNorm: op("layerNorm", transformer.layerNorm),
    layerNormBackward: op("layerNormBackward", transformer.layerNormBackward),
    rope: op("rope", transformer.rope),
    fill: op("fill", elementwise.fill),
    gelu: op("gelu", transformer.gelu),
    geluBackward: op("geluBackward", transformer.geluBackward),
  };
}
