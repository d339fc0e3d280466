/**
 * The engine's op set (../js/ops.ts EngineOps, whose plain-JS twins are the reference) in WGSL: every
 * call records its passes on the Dispatcher `d` (in the engine, into the step's dispatch list).
 */
import type { EngineOps } from "../js/ops.ts";
import type { Dispatcher } from "./dispatcher.ts";
import * as attention from "./attention.ts";
import * as conv from "./conv.ts";
import * as decode from "./decode.ts";
import * as elementwise from "./elementwise.ts";
import { recordGemm } from "./gemm.ts";
import * as norm from "./norm.ts";
import * as optim from "./optim.ts";
import * as scan from "./scan.ts";
import * as speculate from "./speculate.ts";
import * as transformer from "./transformer.ts";
import * as xent from "./xent.ts";

export function webgpuOps<B>(d: Dispatcher<B>): EngineOps<B> {
  return {
    embedding: (p, b) => norm.embedding(d, p, b),
    embeddingBackward: (p, b) => norm.embeddingBackward(d, p, b),
    addRmsNorm: (p, b) => norm.addRmsNorm(d, p, b),
    rmsNormBackward: (p, b) => norm.rmsNormBackward(d, p, b),
    gemm: (p, b) => recordGemm(d, p, b.a, b.b, b.c),
    conv: (p, b) => conv.conv(d, p, b),
    convBackward: (p, b) => conv.convBackward(d, p, b),
    packBC: (p, b) => scan.packBC(d, p, b),
    scanForward: (p, b) => scan.scanForward(d, p, b),
    scanBackward: (p, b) => scan.scanBackward(d, p, b),
    negExp: (p, b) => elementwise.negExp(d, p, b),
    mulInPlace: (p, b) => elementwise.mulInPlace(d, p, b),
    copy: (p, b) => elementwise.copy(d, p, b),
    crossEntropy: (p, b) => xent.crossEntropy(d, p, b),
    sumSquares: (p, b) => optim.sumSquares(d, p, b),
    finalizeStep: (p, b) => optim.finalizeStep(d, p, b),
    adamw: (p, b) => optim.adamw(d, p, b),
    convStep: (p, b) => decode.convStep(d, p, b),
    ssmStep: (p, b) => decode.ssmStep(d, p, b),
    argmax: (p, b) => decode.argmax(d, p, b),
    gemvConv: (p, b) => decode.gemvConv(d, p, b),
    sample: (p, b) => decode.sample(d, p, b),
    normGemv: (p, b) => decode.normGemv(d, p, b),
    convScan: (p, b) => decode.convScan(d, p, b),
    ssmScan: (p, b) => decode.ssmScan(d, p, b),
    draftChoose: (p, b) => speculate.draftChoose(d, p, b),
    acceptDraft: (p, b) => speculate.acceptDraft(d, p, b),
    copyIndexed: (p, b) => speculate.copyIndexed(d, p, b),
    attention: (p, b) => attention.attention(d, p, b),
    decodeAttention: (p, b) => attention.decodeAttention(d, p, b),
    attentionBackward: (p, b) => attention.attentionBackward(d, p, b),
    layerNorm: (p, b) => transformer.layerNorm(d, p, b),
    layerNormBackward: (p, b) => transformer.layerNormBackward(d, p, b),
    rope: (p, b) => transformer.rope(d, p, b),
    fill: (p, b) => elementwise.fill(d, p, b),
    gelu: (p, b) => transformer.gelu(d, p, b),
    geluBackward: (p, b) => transformer.geluBackward(d, p, b),
  };
}
