/**
 * Plain-JS twins of webgpu/speculate.ts: the three kernels that keep a speculative-decoding round on the
 * device (lib/engine/speculative.ts), so that rounds run back to back with nothing read back between them.
 *
 * The round's bookkeeping lives in one int32 control buffer (layout `specLayout`):
 *   P       the pending bytes: text the verifier has read that the drafter has not (at most pMax)
 *   pc      bytes of P the drafted tokens have covered so far this round
 *   nFull   draft bytes produced so far (the draft itself, cut at `draft` bytes, is the verifier's pass ids)
 *   cov[j]  after drafted token j: bytes of text from the drafter's position that tokens 0..j cover
 *   a, w, c the last round's accepted draft bytes, whole drafter tokens kept, and the verifier's own byte
 *
 * draftChoose (one per drafted token): the drafter's best token that agrees with what is pending. While P
 * has bytes not yet covered (rem of them), a token agrees if it spells a prefix of them ("consume": nothing
 * drafted) or, when rem <= extendMax, starts with all of them and goes on ("extend": its bytes after them are
 * drafted); with nothing pending, any token, all its bytes drafted. Every byte is a token of a byte-level BPE
 * (ids 0-255), so some token always agrees.
 *
 * acceptDraft: draft byte j is accepted while its rank under the verifier's logits before it is < beta (rank
 * 0 the argmax, ties to the lower byte); with a accepted, the verifier's own byte c = argmax of the logits
 * after them is emitted too, so a round emits a + 1 bytes. The drafter keeps its first w tokens, those whose
 * text lies inside what was emitted (cov[j] <= |P| + a), and P becomes the text after them.
 */

export interface SpecLayout {
  /** bytes drafted per round at most (the verifier's pass length) */
  draft: number;
  /** drafted tokens per round */
  tokens: number;
  /** P may still be extended by a token while at most this many of its bytes are uncovered */
  extendMax: number;
  /** the most pending bytes: extendMax + draft + 1 (the bound acceptDraft keeps) */
  pMax: number;
  /** int32 offsets in the control buffer */
  at: {
    pLen: number;
    pc: number;
    nFull: number;
    a: number;
    w: number;
    c: number;
    P: number;
    cov: number;
    tok: number;
  };
  /** int32s of the control buffer */
  size: number;
  /** int32s per round in the output: [a + 1, the emitted bytes (draft + 1 slots), bytes drafted] */
  outStride: number;
}

export function specLayout(draft: number, tokens: number, extendMax = 8): SpecLayout {
  const pMax = extendMax + draft + 1;
  const P = 6, cov = P + pMax, tok = cov + tokens;
  return {
    draft,
    tokens,
    extendMax,
    pMax,
    at: { pLen: 0, pc: 1, nFull: 2, a: 3, w: 4, c: 5, P, cov, tok },
    size: tok + tokens,
    outStride: draft + 3,
  };
}

export interface DraftChooseParams {
  L: SpecLayout;
  /** which drafted token of the round (0..tokens-1) */
  j: number;
  /** token ids taking part [0, vocab); the drafter's logits row may be padded beyond */
  vocab: number;
  /** int32s per token in the byte table */
  maxLen: number;
}

/**
 * Chooses drafted token j (module comment) from the drafter's logits (vocab at least) and the token byte
 * table (table[t maxLen + q], lens[t]); writes it to ids[0] (the drafter's next input) and the control
 * buffer, and its drafted bytes into draft (the verifier's pass ids).
 */
export function draftChoose(
  p: DraftChooseParams,
  b: {
    logits: Float32Array;
    table: Int32Array;
    lens: Int32Array;
    ctl: Int32Array;
    draft: Int32Array;
    ids: Int32Array;
  },
): void {
  const { at, extendMax, draft: maxDraft } = p.L, ctl = b.ctl;
  const pLen = ctl[at.pLen], pc = ctl[at.pc], rem = pLen - pc;
  let best = -1, max = -Infinity;
  for (let t = 0; t < p.vocab; t++) {
    const len = b.lens[t];
    if (rem > 0) {
      if (len > rem && rem > extendMax) continue;
      let ok = true;
      for (let q = 0; q < Math.min(len, rem) && ok; q++) {
        ok = b.table[t * p.maxLen + q] === ctl[at.P + pc + q];
      }
      if (!ok) continue;
    }
    const x = b.logits[t];
    if (best < 0 || x > max) [best, max] = [t, x];
  }
  const t = best, len = b.lens[t];
  ctl[at.tok + p.j] = t;
  b.ids[0] = t;
  if (rem > 0 && len <= rem) {
    ctl[at.pc] = pc + len; // consumed: the token spells pending text, nothing drafted
    ctl[at.cov + p.j] = pc + len;
    return;
  }
  let nFull = ctl[at.nFull];
  for (let q = Math.max(rem, 0); q < len; q++, nFull++) {
    if (nFull < maxDraft) b.draft[nFull] = b.table[t * p.maxLen + q];
  }
  ctl[at.nFull] = nFull;
  ctl[at.pc] = pLen;
  ctl[at.cov + p.j] = pLen + nFull;
}

export interface AcceptParams {
  L: SpecLayout;
  /** floats per logits row (the verifier's padded vocabulary) */
  V: number;
  /** the verifier's tokens: bytes, 256 */
  vocab: number;
  beta: number;
  /** this round's slot in the output (int32 offset) */
  outOffset: number;
}

/**
 * Accepts the round's draft (module comment). first: the verifier's logits before the draft (V); rows: the
 * pass's logits (draft rows of V), row j after draft byte j. Writes the emitted bytes to out, c to ids[0]
 * (the verifier's next input), a, w, c and the new P to the control buffer, and clears the round's counters.
 */
export function acceptDraft(
  p: AcceptParams,
  b: {
    first: Float32Array;
    rows: Float32Array;
    draft: Int32Array;
    ctl: Int32Array;
    out: Int32Array;
    ids: Int32Array;
  },
): void {
  const { at, draft: maxDraft, tokens } = p.L, ctl = b.ctl;
  const n = Math.min(ctl[at.nFull], maxDraft), pLen = ctl[at.pLen];
  const row = (j: number) => (j === 0 ? b.first.subarray(0, p.V) : b.rows.subarray((j - 1) * p.V, j * p.V));
  let a = 0;
  for (; a < n; a++) {
    const r = row(a), t = b.draft[a], v = r[t];
    let rank = 0;
    for (let i = 0; i < p.vocab; i++) if (r[i] > v || (r[i] === v && i < t)) rank++;
    if (rank >= p.beta) break;
  }
  const r = row(a);
  let c = 0;
  for (let i = 1; i < p.vocab; i++) if (r[i] > r[c]) c = i;
  // emitted: draft[0, a) then c
  const o = p.outOffset;
  b.out[o] = a + 1;
  for (let q = 0; q < a; q++) b.out[o + 1 + q] = b.draft[q];
  b.out[o + 1 + a] = c;
  b.out[o + maxDraft + 2] = n;
  b.ids[0] = c;
  // the drafter keeps the tokens whose text was all emitted; P becomes (P | draft[0, a) | c) after them
  let w = 0;
  while (w < tokens && ctl[at.cov + w] <= pLen + a) w++;
  const start = w > 0 ? ctl[at.cov + w - 1] : 0, total = pLen + a + 1;
  const len = Math.min(total - start, p.L.pMax);
  for (let q = 0; q < len; q++) {
    const s = start + q; // ascending: s >= q, so P is read before it is overwritten
    ctl[at.P + q] = s < pLen ? ctl[at.P + s] : s < pLen + a ? b.draft[s - pLen] : c;
  }
  ctl[at.pLen] = len;
  ctl[at.pc] = 0;
  ctl[at.nFull] = 0;
  ctl[at.a] = a;
  ctl[at.w] = w;
  ctl[at.c] = c;
}

export interface CopyIndexedParams {
  /** blocks copied (e.g. layers) */
  rows: number;
  /** floats per block */
  count: number;
  srcRowStride: number;
  dstRowStride: number;
  /** floats between two slots of a block in src */
  slotStride: number;
  /** the slot: ctl[indexAt] */
  indexAt: number;
  /** the slot picks where in dst the block goes instead of where in src it comes from (an append) */
  slotInDst?: boolean;
  /** floats before block 0 in src (default 0) */
  srcOffset?: number;
}

/**
 * dst[r dstRowStride + i] = src[r srcRowStride + ctl[indexAt] slotStride + i]: a roll-back to a kept state;
 * with slotInDst, dst[r dstRowStride + ctl[indexAt] slotStride + i] = src[srcOffset + r srcRowStride + i]:
 * a row appended at the position the device holds (a KV cache).
 */
export function copyIndexed(
  p: CopyIndexedParams,
  b: { src: Float32Array; dst: Float32Array; ctl: Int32Array },
): void {
  const slot = b.ctl[p.indexAt], off = p.srcOffset ?? 0;
  for (let r = 0; r < p.rows; r++) {
    const s = off + r * p.srcRowStride + (p.slotInDst ? 0 : slot * p.slotStride);
    const t = r * p.dstRowStride + (p.slotInDst ? slot * p.slotStride : 0);
    b.dst.set(b.src.subarray(s, s + p.count), t);
  }
}
