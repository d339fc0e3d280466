/**
 * Speculative decoding with subword drafting (PAPER.md, result 6): a small subword Mamba drafts m tokens,
 * MambaByte verifies their bytes in ONE parallel pass resumed from its cached recurrent state, and at the
 * first rejected byte MambaByte takes over byte by byte until a boundary byte, after which the drafter
 * resumes from the bytes produced so far.
 *
 * One round, with `text` = prompt + everything emitted so far and the verifier's state after `text`
 * (plus its logits for the next byte, kept from the previous round):
 *   1. Draft: the drafter's state covers text[0, dPos) (whole pre-split pieces). The bytes text[dPos, end)
 *      form the unfinished last piece P (e.g. the space before the next word). The first drafted token is
 *      the drafter's best token whose bytes START with P (so the drafter sees " word" as one token, as in
 *      training, rather than a lone " "); its bytes after P, then the bytes of m-1 more greedy tokens, are
 *      the draft d_1..d_k (token bytes, never decoded strings: a token may be half a character).
 *   2. Verify: prefill(verifier, d_1..d_k, state) gives logits L_1..L_k in one pass; d_1 is checked
 *      against the cached logits L_0, d_{j+1} against L_j. d_j is accepted while its rank under the
 *      verifier is < beta (rank 0 = the argmax, ties to the lower byte as in `pickToken`), so beta = 1
 *      accepts exactly the bytes greedy decoding would emit.
 *   3. All accepted: the pass's final state and L_k are the new cache, and drafting continues from the
 *      drafter's own state after its tokens. Otherwise, with a accepted bytes: the verifier emits its own
 *      byte c = argmax L_a, and its state is rolled to "after d_1..d_a, c": the state the pass kept after
 *      d_a plus one step on c (the JS stepper), or ONE more pass over just those a+1 bytes from the state
 *      cached before verification (tfjs); never re-reading the context.
 *   4. Correct: while the last emitted byte is not a boundary byte, MambaByte emits its argmax byte and
 *      steps (O(1) per byte). Boundary bytes are ASCII whitespace (space, \t, \n, \v, \f, \r): word ends,
 *      where the drafter's tokenization restarts cleanly. After `maxCorrection` bytes without one (text
 *      without spaces: code, CJK) drafting resumes anyway.
 *   5. Re-sync the drafter: the complete pieces of text[dPos, end) are encoded and read by the drafter in
 *      one pass from its state; the unfinished last piece becomes the new P.
 *
 * Cost model: with verify = "pass" (the paper's scheme, the default) the verifier runs one parallel pass
 * per round plus one step per corrected byte. With the fused JS stepper (cpu/wasm) the pass is its `read`,
 * which streams each weight matrix once per four bytes and keeps the state after every byte, so a
 * rejection rolls back by taking a kept state (`rollTo`); with tfjs ops (webgpu) a rejection costs a second
 * pass over the accepted bytes from the state cached before verification. verify = "steps" reads the
 * draft byte by byte instead, stopping at the first rejection (nothing to roll back). The drafter runs one
 * step per drafted token plus one read per re-sync.
 * Either way every emitted byte is the verifier's argmax (beta = 1) or within its top-beta.
 */
import type { ByteBPE } from "../data/bpe.ts";
import { preSplit } from "../data/bpe.ts";
import type { MambaLM } from "../models/mamba.ts";
import { RecurrentSession } from "./session.ts";
import { EngineSpeculative, type SpeculativeResult, type SpeculativeStats } from "../engine/speculative.ts";
import { readParameters } from "../models/lm.ts";
import * as tf from "@tensorflow/tfjs";

export type { SpeculativeResult, SpeculativeStats };

export interface SpeculativeOptions {
  /** Subword tokens drafted per round (the paper: 3). */
  draftTokens?: number;
  /** A drafted byte is accepted while it is among the verifier's top-beta bytes (1 = exact greedy). */
  beta?: number;
  /** Where byte-by-byte correction stops and drafting resumes (default: ASCII whitespace). */
  boundary?: (byte: number) => boolean;
  /** Resume drafting after this many corrected bytes even without a boundary byte (default 32). */
  maxCorrection?: number;
  /** Streaming: receives each emitted byte and whether it was an accepted draft byte. */
  onByte?: (byte: number, accepted: boolean) => void | Promise<void>;
  /**
   * "js": the fused typed-array stepper (cpu/wasm), "tf": tfjs `step`, "engine": whole rounds on the native
   * engine (lib/engine/speculative.ts: no correction phase, so `boundary`, `maxCorrection` and `verify` do
   * not apply). Default: engine on webgpu, js on cpu/wasm.
   */
  stepper?: "js" | "tf" | "engine";
  /**
   * How the verifier reads a draft. "pass" (default): one parallel pass over all drafted bytes from the
   * cached state (the paper's scheme; the JS stepper's fused pass on cpu/wasm, tfjs ops elsewhere).
   * "steps": byte by byte, stopping at the first rejected byte.
   */
  verify?: "pass" | "steps";
}

/** ASCII whitespace: space, \t, \n, \v, \f, \r. */
export const isWhitespaceByte = (b: number) => b === 0x20 || (b >= 0x09 && b <= 0x0d);

/** Index of the largest value, ties to the lower index (as `pickToken` with greedy). */
export function argmax(x: ArrayLike<number>, n = x.length): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** Rank of token t under logits x (0 = argmax); equal logits rank the lower index first. */
export function rankOf(x: ArrayLike<number>, t: number, n = x.length): number {
  const v = x[t];
  let rank = 0;
  for (let i = 0; i < n; i++) if (x[i] > v || (x[i] === v && i < t)) rank++;
  return rank;
}

/** Greedy decoding of `maxBytes` bytes with a RecurrentSession (the plain baseline, same numerics). */
export async function greedyDecode(
  model: MambaLM,
  prompt: Uint8Array,
  maxBytes: number,
  opts: { stepper?: "js" | "tf" } = {},
): Promise<{ bytes: Uint8Array; seconds: number }> {
  if (prompt.length === 0) throw new Error("greedyDecode: the prompt must hold at least one byte");
  const s = new RecurrentSession(model, opts.stepper);
  const t0 = performance.now();
  await s.prefill(prompt);
  const out = new Uint8Array(maxBytes);
  for (let i = 0; i < maxBytes; i++) {
    out[i] = argmax(s.next);
    if (i < maxBytes - 1) await s.step(out[i]);
  }
  s.dispose();
  return { bytes: out, seconds: (performance.now() - t0) / 1000 };
}

/**
 * Speculative decoding of `maxBytes` bytes after `prompt` (see the file comment). The verifier reads
 * bytes (vocab 256); the drafter is a subword Mamba over `tokenizer`'s vocabulary.
 */
export async function speculativeDecode(
  verifier: MambaLM,
  drafter: MambaLM,
  tokenizer: ByteBPE,
  prompt: Uint8Array,
  maxBytes: number,
  opts: SpeculativeOptions = {},
): Promise<SpeculativeResult> {
  const m = opts.draftTokens ?? 3, beta = opts.beta ?? 1, maxCorrection = opts.maxCorrection ?? 32;
  const boundary = opts.boundary ?? isWhitespaceByte;
  if (prompt.length === 0) throw new Error("speculativeDecode: the prompt must hold at least one byte");
  if (!(Number.isInteger(m) && m >= 1)) {
    throw new Error(`speculativeDecode: draftTokens must be an integer >= 1 (got ${m})`);
  }
  if (!(Number.isInteger(beta) && beta >= 1)) {
    throw new Error(`speculativeDecode: beta must be an integer >= 1 (got ${beta})`);
  }
  if (verifier.config.vocab_size !== 256) {
    throw new Error(
      `speculativeDecode: the verifier must be a byte model (vocab_size 256, got ${verifier.config.vocab_size})`,
    );
  }
  if (drafter.config.vocab_size < tokenizer.vocabSize) {
    throw new Error(
      `speculativeDecode: the drafter's vocab_size ${drafter.config.vocab_size} is smaller than the tokenizer's ${tokenizer.vocabSize}`,
    );
  }
  const engine = opts.stepper === "engine" || (opts.stepper === undefined && tf.getBackend() === "webgpu");
  if (engine) return await onEngine(verifier, drafter, tokenizer, prompt, maxBytes, opts);
  const stepper = opts.stepper as "js" | "tf" | undefined;
  const t0 = performance.now();
  const Vt = tokenizer.vocabSize;
  // prompt + emitted bytes, and per emitted byte whether it was accepted: grown as bytes come (doubling),
  // so a large maxBytes allocates nothing up front
  let text = new Uint8Array(prompt.length + Math.min(maxBytes, 4096));
  text.set(prompt);
  let end = prompt.length;
  let acceptedMask = new Uint8Array(Math.min(maxBytes, 4096));
  const st = { rounds: 0, draftedTokens: 0, drafted: 0, accepted: 0, corrected: 0 };

  const ver = new RecurrentSession(verifier, stepper);
  const verifyMode = opts.verify ?? "pass";
  const dra = new RecurrentSession(drafter, stepper);
  const emit = async (b: number, acc: boolean) => {
    if (end === text.length) {
      const more = Math.min(maxBytes, 2 * acceptedMask.length);
      const t = new Uint8Array(prompt.length + more), mask = new Uint8Array(more);
      t.set(text);
      mask.set(acceptedMask);
      text = t;
      acceptedMask = mask;
    }
    acceptedMask[end - prompt.length] = acc ? 1 : 0;
    text[end++] = b;
    if (acc) st.accepted++;
    else st.corrected++;
    await opts.onByte?.(b, acc);
  };
  const done = () => end - prompt.length >= maxBytes;

  try {
    await ver.prefill(prompt);
    // The drafter's state covers text[0, dPos): whole pre-split pieces, the last piece stays pending.
    let dPos = 0;
    let dReady = false; // whether dra.state/next describe text[0, dPos)
    const resync = async () => {
      // pieces of text[dPos, end): all but the last are complete
      const span = text.subarray(dPos, end);
      let lastStart = 0;
      preSplit(span, (s) => (lastStart = s));
      if (lastStart > 0) {
        const ids = tokenizer.encode(span.subarray(0, lastStart));
        await dra.prefill(ids);
        dPos += lastStart;
        dReady = true;
      }
    };

    while (!done()) {
      // ---- 1. draft
      await resync();
      let pending = text.slice(dPos, end); // P: bytes already emitted that the drafter has not read
      if (!dReady) {
        // nothing complete yet (a one-piece prompt): the drafter reads P as it is and drafts freely
        await dra.prefill(tokenizer.encode(pending));
        dPos = end;
        dReady = true;
        pending = new Uint8Array(0);
      }
      let draftState = dra.state!, draftNext = dra.next; // restored when the draft is rejected
      const draft: number[] = [];
      const tokens: number[] = [];
      let logits = draftNext;
      for (let j = 0; j < m; j++) {
        let t: number;
        if (j === 0 && pending.length > 0) {
          t = bestWithPrefix(logits, tokenizer, pending, Vt);
          if (t < 0) {
            // no token continues P: the drafter reads P and drafts freely
            await dra.prefill(tokenizer.encode(pending));
            dPos = end;
            pending = new Uint8Array(0);
            logits = dra.next;
            draftState = dra.state!;
            draftNext = dra.next;
            t = argmax(logits, Vt);
          }
        } else t = argmax(logits, Vt);
        tokens.push(t);
        const tb = tokenizer.tokenBytes(t);
        for (let q = j === 0 ? pending.length : 0; q < tb.length; q++) draft.push(tb[q]);
        logits = await dra.step(t); // the last step gives the state to continue from on full acceptance
      }
      const remaining = maxBytes - (end - prompt.length);
      if (draft.length > remaining) draft.length = remaining;
      st.rounds++;
      st.draftedTokens += tokens.length;
      st.drafted += draft.length;
      if (draft.length === 0) {
        // the draft only re-spelled P: fall back to one verifier byte so the loop always progresses
        dra.state = draftState;
        dra.next = draftNext;
        const c = argmax(ver.next);
        await emit(c, false);
        if (!done()) await ver.step(c);
        continue;
      }

      if (verifyMode === "steps") {
        // ---- 2'. verify byte by byte from the cached state, stopping at the first rejection
        let a = 0;
        while (a < draft.length && rankOf(ver.next, draft[a]) < beta) {
          await emit(draft[a], true);
          a++;
          if (!done()) await ver.step(draft[a - 1]);
        }
        if (a === draft.length) {
          dPos = end;
          continue;
        }
        dra.state = draftState;
        dra.next = draftNext;
        if (done()) break;
        const c = argmax(ver.next);
        await emit(c, false);
        if (!done()) await ver.step(c);
      } else {
        // ---- 2. verify all drafted bytes in one pass from the cached state
        const before = ver.state!, beforeNext = ver.next;
        const rows = await ver.read(draft);
        let a = 0;
        for (; a < draft.length; a++) {
          const row = a === 0 ? beforeNext : rows.subarray((a - 1) * 256, a * 256);
          if (rankOf(row, draft[a]) >= beta) break;
        }
        for (let j = 0; j < a; j++) await emit(draft[j], true);

        if (a === draft.length) {
          // ---- 3a. all accepted: the verifier's state is already after the draft; the drafter continues
          // from its own state after its tokens (the draft may have been cut by maxBytes; then we are done)
          dPos = end;
          continue;
        }
        // ---- 3b. rejected at a: the verifier's own byte, and the state rolled to after d_1..d_a, c
        dra.state = draftState; // the drafter goes back to text[0, dPos)
        dra.next = draftNext;
        if (done()) break;
        const cRow = a === 0 ? beforeNext : rows.subarray((a - 1) * 256, a * 256);
        const c = argmax(cRow);
        await emit(c, false);
        if (done()) break;
        if (ver.canRoll) {
          // the fused pass kept the state after every drafted byte: take the one after d_a, step c
          ver.rollTo(a, before, beforeNext);
          await ver.step(c);
        } else await ver.read([...draft.slice(0, a), c], before);
      }

      // ---- 4. byte by byte until a boundary byte
      let n = 1;
      while (!done() && !boundary(text[end - 1]) && n < maxCorrection) {
        const b = argmax(ver.next);
        await emit(b, false);
        n++;
        if (!done()) await ver.step(b);
      }
      // ---- 5. the next round's resync reads the complete pieces since dPos
    }
  } finally {
    ver.dispose();
    dra.dispose();
  }
  const seconds = (performance.now() - t0) / 1000;
  const stats: SpeculativeStats = {
    bytes: maxBytes,
    ...st,
    acceptanceRate: st.drafted ? st.accepted / st.drafted : 0,
    verifierPasses: ver.passes,
    verifierSteps: ver.steps,
    drafterPasses: dra.passes,
    drafterSteps: dra.steps,
    seconds,
    bytesPerSecond: maxBytes / seconds,
  };
  return {
    bytes: text.slice(prompt.length, end),
    accepted: acceptedMask.slice(0, end - prompt.length),
    stats,
  };
}

/** speculativeDecode on the native engine (WebGPU; the kernels' JS twins off a GPU): rounds on the device. */
async function onEngine(
  verifier: MambaLM,
  drafter: MambaLM,
  tokenizer: ByteBPE,
  prompt: Uint8Array,
  maxBytes: number,
  opts: SpeculativeOptions,
): Promise<SpeculativeResult> {
  const t0 = performance.now();
  const spec = await EngineSpeculative.create({
    verifier: { config: verifier.config, params: await readParameters(verifier) },
    drafter: { config: drafter.config, params: await readParameters(drafter) },
    tokenizer,
    draftTokens: opts.draftTokens,
    beta: opts.beta,
    backend: tf.getBackend() === "webgpu" ? "webgpu" : "js",
    allowSoftwareGpu: true, // TF.js already runs on this adapter
  });
  try {
    const r = await spec.decode(prompt, maxBytes, async (bytes, accepted) => {
      for (let i = 0; i < bytes.length; i++) await opts.onByte?.(bytes[i], accepted[i] === 1);
    });
    const seconds = (performance.now() - t0) / 1000; // loading the weights onto the device included
    return { ...r, stats: { ...r.stats, seconds, bytesPerSecond: maxBytes / seconds } };
  } finally {
    spec.destroy();
  }
}

/** The drafter's best token (by logits) whose bytes start with `prefix`; -1 if there is none. */
function bestWithPrefix(logits: Float32Array, tokenizer: ByteBPE, prefix: Uint8Array, V: number): number {
  let best = -1;
  for (let t = 0; t < V; t++) {
    const tb = tokenizer.tokenBytes(t);
    if (tb.length < prefix.length) continue;
    let ok = true;
    for (let q = 0; q < prefix.length && ok; q++) ok = tb[q] === prefix[q];
    if (ok && (best < 0 || logits[t] > logits[best])) best = t;
  }
  return best;
}

/**
 * HTML of generated bytes coloured by origin: accepted draft bytes green, the verifier's own bytes red,
 * the prompt grey. Bytes are decoded as UTF-8 per run of one origin (a character split between two runs
 * shows as U+FFFD in both).
 */
export function originHtml(prompt: Uint8Array, bytes: Uint8Array, accepted: Uint8Array): string {
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const dec = new TextDecoder();
  const parts = [`<span style="color:#888">${esc(dec.decode(prompt))}</span>`];
  for (let i = 0; i < bytes.length;) {
    let j = i;
    while (j < bytes.length && accepted[j] === accepted[i]) j++;
    const style = accepted[i] ? "background:#c8f0c8" : "background:#f8c8c8";
    parts.push(`<span style="${style}">${esc(dec.decode(bytes.subarray(i, j)))}</span>`);
    i = j;
  }
  return `<pre style="white-space:pre-wrap;font-size:13px">${parts.join("")}</pre>`;
}
