/**
 * The unigram entropy of bytes: -sum_b p(b) log2 p(b) over the byte frequencies of the text itself, in bits
 * per byte. A model that does not beat it by a wide margin has learned little beyond which bytes are
 * common (issue 6/6's sanity check: at least 1 bit per byte).
 */
export function unigramBitsPerByte(bytes: Uint8Array): number {
  if (!bytes.length) return NaN;
  const counts = new Float64Array(256);
  for (const b of bytes) counts[b]++;
  let h = 0;
  for (const c of counts) {
    if (c > 0) {
      const p = c / bytes.length;
      h -= p * Math.log2(p);
    }
  }
  return h;
}

/** Bits per byte a model must beat the unigram entropy by before its results count as learned. */
export const UNIGRAM_MARGIN = 1;
