/**
 * UTF-8 characters on raw bytes, shared by the BPE pre-split and the noise transforms: both work on
 * characters and both must accept ANY byte sequence. A byte that does not start a well-formed UTF-8
 * sequence (a stray continuation byte, an overlong form, a surrogate, a code point above U+10FFFF, or a
 * sequence cut short) counts as a character of its own, one byte long; so a valid UTF-8 text splits
 * into exactly its code points, and invalid bytes never swallow the valid characters after them.
 */

/** Byte length of the character starting at b[i]: 1-4 for a well-formed sequence, else 1. */
export function charLength(b: Uint8Array, i: number): number {
  const x = b[i];
  if (x < 0x80) return 1;
  const cont = (k: number) => i + k < b.length && (b[i + k] & 0xc0) === 0x80;
  if (x >= 0xc2 && x <= 0xdf) return cont(1) ? 2 : 1; // 0xc0, 0xc1 only start overlong forms
  if (x >= 0xe0 && x <= 0xef) {
    const y = b[i + 1];
    if ((x === 0xe0 && y < 0xa0) || (x === 0xed && y > 0x9f)) return 1; // overlong; surrogates
    return cont(1) && cont(2) ? 3 : 1;
  }
  if (x >= 0xf0 && x <= 0xf4) {
    const y = b[i + 1];
    if ((x === 0xf0 && y < 0x90) || (x === 0xf4 && y > 0x8f)) return 1; // overlong; above U+10FFFF
    return cont(1) && cont(2) && cont(3) ? 4 : 1;
  }
  return 1;
}

/** The code point of the well-formed `len`-byte sequence at b[i] (len from charLength, > 1). */
export function codePointAt(b: Uint8Array, i: number, len: number): number {
  if (len === 2) return ((b[i] & 0x1f) << 6) | (b[i + 1] & 0x3f);
  if (len === 3) return ((b[i] & 0x0f) << 12) | ((b[i + 1] & 0x3f) << 6) | (b[i + 2] & 0x3f);
  return ((b[i] & 0x07) << 18) | ((b[i + 1] & 0x3f) << 12) | ((b[i + 2] & 0x3f) << 6) | (b[i + 3] & 0x3f);
}
