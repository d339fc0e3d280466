/**
 * WGSL of the speculative round's bookkeeping kernels (plain-JS twins and the rules: ../js/speculate.ts):
 * draftChoose and acceptDraft run as one workgroup (256 threads reduce over the vocabulary, thread 0 writes
 * the control buffer); copyIndexed is a flat copy whose source slot is read from the control buffer.
 */
import type { AcceptParams, CopyIndexedParams, DraftChooseParams } from "../js/speculate.ts";
import { type Dispatcher, flatGroups } from "./dispatcher.ts";
import { argmaxReduce, cached, declare, FLAT_ARGS, flatIndex, GROUP_ARGS, NO_INDEX } from "./wgsl.ts";

const W = 256;
export function draftChooseShader(p: DraftChooseParams): string {
  const { at, extendMax, draft } = p.L;
  return cached(`draftChoose ${JSON.stringify(p)}`, () =>
    `${
      declare([
        ["logits", "read", "f32"],
        ["table", "read", "i32"],
        ["lens", "read", "i32"],
        ["ctl", "read_write", "i32"],
        ["draft", "read_write", "i32"],
        ["ids", "read_write", "i32"],
      ])
    }
var<workgroup> bestV: array<f32, ${W}>;
var<workgroup> bestI: array<u32, ${W}>;
@compute @workgroup_size(${W}) fn main(${GROUP_ARGS}) {
  let pLen = ctl[${at.pLen}]; let pc = ctl[${at.pc}]; let rem = pLen - pc;
  var v = -3.4028234663852886e38; var at = ${NO_INDEX};
  for (var t = lid; t < ${p.vocab}u; t += ${W}u) {
    let len = lens[t];
    var ok = !(rem > 0 && len > rem && rem > ${extendMax});
    if (rem > 0) {
      for (var q = 0; q < min(len, rem) && ok; q++) {
        ok = table[i32(t) * ${p.maxLen} + q] == ctl[${at.P} + pc + q];
      }
    }
    let x = logits[t];
    if (ok && (at == ${NO_INDEX} || x > v)) { v = x; at = t; }
  }
  ${argmaxReduce(W)}
  if (lid == 0u) {
    let t = i32(bestI[0]); let len = lens[t];
    ctl[${at.tok + p.j}] = t;
    ids[0] = t;
    if (rem > 0 && len <= rem) {
      ctl[${at.pc}] = pc + len;
      ctl[${at.cov + p.j}] = pc + len;
    } else {
      var nFull = ctl[${at.nFull}];
      for (var q = max(rem, 0); q < len; q++) {
        if (nFull < ${draft}) { draft[nFull] = table[t * ${p.maxLen} + q]; }
        nFull++;
      }
      ctl[${at.nFull}] = nFull;
      ctl[${at.pc}] = pLen;
      ctl[${at.cov + p.j}] = pLen + nFull;
    }
  }
}`);
}

/** draftChoose (../js/speculate.ts) as one workgroup. */
export function draftChoose<B>(
  d: Dispatcher<B>,
  p: DraftChooseParams,
  b: { logits: B; table: B; lens: B; ctl: B; draft: B; ids: B },
): void {
  d.dispatch("draftChoose", draftChooseShader(p), [b.logits, b.table, b.lens, b.ctl, b.draft, b.ids], [
    1,
    1,
    1,
  ]);
}

export function acceptDraftShader(p: AcceptParams): string {
  const { at, draft, tokens, pMax } = p.L, o = p.outOffset;
  return cached(`acceptDraft ${JSON.stringify(p)}`, () =>
    `${
      declare([
        ["first", "read", "f32"],
        ["rows", "read", "f32"],
        ["draft", "read", "i32"],
        ["ctl", "read_write", "i32"],
        ["out", "read_write", "i32"],
        ["ids", "read_write", "i32"],
      ])
    }
var<workgroup> bestV: array<f32, ${W}>;
var<workgroup> bestI: array<u32, ${W}>;
var<workgroup> ranks: array<atomic<u32>, ${draft}>;
var<workgroup> shared_a: u32;
fn logit(j: u32, i: u32) -> f32 {
  if (j == 0u) { return first[i]; }
  return rows[(j - 1u) * ${p.V}u + i];
}
@compute @workgroup_size(${W}) fn main(${GROUP_ARGS}) {
  let n = u32(min(ctl[${at.nFull}], ${draft}));
  if (lid < ${draft}u) { atomicStore(&ranks[lid], 0u); }
  workgroupBarrier();
  // rank of draft byte j under row j: the entries above it (equal ones below its index count too)
  for (var i = lid; i < ${p.vocab}u; i += ${W}u) {
    for (var j = 0u; j < n; j++) {
      let t = u32(draft[j]); let x = logit(j, i); let y = logit(j, t);
      if (x > y || (x == y && i < t)) { atomicAdd(&ranks[j], 1u); }
    }
  }
  workgroupBarrier();
  if (lid == 0u) {
    var a = 0u;
    loop {
      if (a >= n) { break; }
      if (atomicLoad(&ranks[a]) >= ${p.beta}u) { break; }
      a++;
    }
    shared_a = a;
  }
  let a = workgroupUniformLoad(&shared_a);
  var v = -3.4028234663852886e38; var at = ${NO_INDEX};
  for (var i = lid; i < ${p.vocab}u; i += ${W}u) {
    let x = logit(a, i);
    if (at == ${NO_INDEX} || x > v) { v = x; at = i; }
  }
  ${argmaxReduce(W)}
  if (lid == 0u) {
    let c = i32(bestI[0]);
    let ai = i32(a); let pLen = ctl[${at.pLen}];
    out[${o}] = ai + 1;
    for (var q = 0; q < ai; q++) { out[${o + 1} + q] = draft[q]; }
    out[${o + 1} + ai] = c;
    out[${o + draft + 2}] = i32(n);
    ids[0] = c;
    var w = 0;
    loop {
      if (w >= ${tokens}) { break; }
      if (ctl[${at.cov} + w] > pLen + ai) { break; }
      w++;
    }
    var start = 0;
    if (w > 0) { start = ctl[${at.cov} + w - 1]; }
    let len = min(pLen + ai + 1 - start, ${pMax});
    for (var q = 0; q < len; q++) {
      let s = start + q;
      var byte = c;
      if (s < pLen) { byte = ctl[${at.P} + s]; } else if (s < pLen + ai) { byte = draft[s - pLen]; }
      ctl[${at.P} + q] = byte;
    }
    ctl[${at.pLen}] = len;
    ctl[${at.pc}] = 0;
    ctl[${at.nFull}] = 0;
    ctl[${at.a}] = ai;
    ctl[${at.w}] = w;
    ctl[${at.c}] = c;
  }
}`);
}

/** acceptDraft (../js/speculate.ts) as one workgroup. */
export function acceptDraft<B>(
  d: Dispatcher<B>,
  p: AcceptParams,
  b: { first: B; rows: B; draft: B; ctl: B; out: B; ids: B },
): void {
  d.dispatch("acceptDraft", acceptDraftShader(p), [b.first, b.rows, b.draft, b.ctl, b.out, b.ids], [1, 1, 1]);
}

export function copyIndexedShader(p: CopyIndexedParams): string {
  return cached(
    `copyIndexed ${JSON.stringify(p)}`,
    () =>
      `${declare([["src", "read", "f32"], ["dst", "read_write", "f32"], ["ctl", "read", "i32"]])}
@compute @workgroup_size(256) fn main(${FLAT_ARGS}) {
  let i = ${flatIndex(256)};
  if (i >= ${p.rows * p.count}u) { return; }
  let r = i / ${p.count}u; let k = i % ${p.count}u;
  let slot = u32(ctl[${p.indexAt}]);
  ${
        p.slotInDst
          ? `dst[r * ${p.dstRowStride}u + slot * ${p.slotStride}u + k] = src[${
            p.srcOffset ?? 0
          }u + r * ${p.srcRowStride}u + k];`
          : `dst[r * ${p.dstRowStride}u + k] = src[${
            p.srcOffset ?? 0
          }u + r * ${p.srcRowStride}u + slot * ${p.slotStride}u + k];`
      }
}`,
  );
}

/** copyIndexed (../js/speculate.ts): a roll-back to a kept state, the slot read on the device. */
export function copyIndexed<B>(d: Dispatcher<B>, p: CopyIndexedParams, b: { src: B; dst: B; ctl: B }): void {
  d.dispatch("copyIndexed", copyIndexedShader(p), [b.src, b.dst, b.ctl], flatGroups(p.rows * p.count, 256));
}
