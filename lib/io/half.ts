/**
 * IEEE 754 binary16 (float16) and bfloat16 conversions, on raw 16-bit patterns held in Uint16Array.
 *
 * Encoding rounds to nearest, ties to even (as PyTorch's `.half()` / `.bfloat16()` do), overflows to
 * infinity, produces subnormals, keeps the sign of zero, and maps NaN to a quiet NaN. Decoding is exact
 * (every float16/bfloat16 value is a float32 value) and keeps NaN payloads bit for bit.
 */

// ---------------------------------------------------------------------------------------------------
// Decoding

let f16ToF32BitsTable: Uint32Array | undefined;

/** float32 bit pattern of every float16 pattern; 256 KiB, built on first use. */
function f16Table(): Uint32Array {
  if (f16ToF32BitsTable) return f16ToF32BitsTable;
  const t = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    let mant = h & 0x3ff;
    if (exp === 0x1f) {
      // Inf or NaN: widen the payload so NaNs survive a float16 -> float32 -> float16 trip.
      t[h] = sign | 0x7f800000 | (mant << 13);
    } else if (exp !== 0) {
      t[h] = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    } else if (mant === 0) {
      t[h] = sign; // signed zero
    } else {
      // Subnormal float16 = normal float32: shift the mantissa up until its leading 1 is implicit.
      let e = -14;
      while ((mant & 0x400) === 0) {
        mant <<= 1;
        e--;
      }
      t[h] = sign | ((e + 127) << 23) | ((mant & 0x3ff) << 13);
    }
  }
  f16ToF32BitsTable = t;
  return t;
}

/** Decodes float16 bit patterns into float32 values. */
export function decodeFloat16(bits: Uint16Array): Float32Array {
  const table = f16Table();
  const out = new Float32Array(bits.length);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) outBits[i] = table[bits[i]];
  return out;
}

/** Decodes bfloat16 bit patterns into float32 values (bfloat16 is the top half of a float32). */
export function decodeBfloat16(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const outBits = new Uint32Array(out.buffer);
  // `>>> 0` keeps the value an unsigned int32: a negative intermediate makes V8 take a slow path.
  for (let i = 0; i < bits.length; i++) outBits[i] = (bits[i] << 16) >>> 0;
  return out;
}

const scalarF32 = new Float32Array(1);
const scalarU32 = new Uint32Array(scalarF32.buffer);

/** The value of one float16 bit pattern. */
export function float16BitsToNumber(h: number): number {
  scalarU32[0] = f16Table()[h & 0xffff];
  return scalarF32[0];
}

/** The value of one bfloat16 bit pattern. */
export function bfloat16BitsToNumber(h: number): number {
  scalarU32[0] = (h & 0xffff) << 16;
  return scalarF32[0];
}

// ---------------------------------------------------------------------------------------------------
// Encoding from float32 (fast paths on the bit pattern; exact because the input is already float32)

function f32BitsToF16Bits(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) {
    // Inf stays Inf; NaN keeps its top payload bits and is forced quiet so it cannot become Inf.
    return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  }
  if (exp > 142) return sign | 0x7c00; // >= 2^16: beyond float16's range even before rounding
  if (exp >= 113) {
    // Normal float16 (unbiased exponent -14..15): drop 13 mantissa bits, rounding half to even. A carry
    // out of the mantissa correctly bumps the exponent, and 65520 and up rounds to Inf (0x7c00).
    let h = ((exp - 112) << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++;
    return sign | h;
  }
  if (exp < 102) return sign; // below 2^-25 (half the smallest subnormal): rounds to zero
  // Subnormal float16: value = m * 2^(exp-150) with the implicit bit; in units of 2^-24 that is
  // m >> (126 - exp), rounded half to even. A result of 0x400 is the smallest normal, encoded correctly.
  const m = mant | 0x800000;
  const shift = 126 - exp; // 14..24
  let h = m >>> shift;
  const rest = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && (h & 1) === 1)) h++;
  return sign | h;
}

function f32BitsToBf16Bits(u: number): number {
  if ((u & 0x7f800000) === 0x7f800000 && (u & 0x7fffff) !== 0) {
    return ((u >>> 16) | 0x40) & 0xffff; // quiet NaN, sign and top payload kept
  }
  // Adding 0x7fff plus the lowest kept bit rounds half to even; overflow lands on Inf (0x7f80).
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

// ---------------------------------------------------------------------------------------------------
// Encoding from arbitrary JS numbers (float64): rounded once, straight to the target format, so there
// is no double rounding through float32.

const scalarView = new DataView(new ArrayBuffer(8));

/** floor(log2(a)) for finite a > 0, exactly (read from the float64 exponent). */
function floorLog2(a: number): number {
  scalarView.setFloat64(0, a);
  const e = (scalarView.getUint32(0) >>> 20) & 0x7ff;
  if (e === 0) return floorLog2(a * 2 ** 64) - 64; // float64 subnormal
  return e - 1023;
}

function signOf(x: number): number {
  scalarView.setFloat64(0, x);
  return scalarView.getUint32(0) >>> 31;
}

/** Round a float64 to a 16-bit format with `eBits` exponent and `mBits` mantissa bits. */
function numberToBits(x: number, eBits: number, mBits: number): number {
  const expAllOnes = (1 << eBits) - 1;
  const sign = signOf(x) << 15;
  if (Number.isNaN(x)) return sign | (expAllOnes << mBits) | (1 << (mBits - 1));
  const a = Math.abs(x);
  if (a === Infinity) return sign | (expAllOnes << mBits);
  if (a === 0) return sign;
  const bias = (1 << (eBits - 1)) - 1;
  const emin = 1 - bias;
  // Quantum (spacing of representable values) at a's binade; subnormals share emin's quantum.
  let e = Math.max(floorLog2(a), emin);
  const r = a * 2 ** (mBits - e); // exact: scaling by a power of two
  let n = Math.floor(r);
  const frac = r - n;
  if (frac > 0.5 || (frac === 0.5 && n % 2 === 1)) n++;
  const implicit = 1 << mBits;
  if (n === 2 * implicit) { // rounding carried into the next binade
    n = implicit;
    e++;
  }
  if (e > bias) return sign | (expAllOnes << mBits); // overflow
  if (n < implicit) return sign | n; // subnormal (only possible when e === emin)
  return sign | ((e + bias) << mBits) | (n - implicit);
}

/** float16 bit pattern of a number (round to nearest even). */
export function numberToFloat16Bits(x: number): number {
  return numberToBits(x, 5, 10);
}

/** bfloat16 bit pattern of a number (round to nearest even). */
export function numberToBfloat16Bits(x: number): number {
  return numberToBits(x, 8, 7);
}

/** Encodes values as float16 bit patterns. Float32Array input takes an exact fast path. */
export function encodeFloat16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  if (values instanceof Float32Array) {
    const u = new Uint32Array(values.buffer, values.byteOffset, values.length);
    for (let i = 0; i < u.length; i++) out[i] = f32BitsToF16Bits(u[i]);
  } else {
    for (let i = 0; i < values.length; i++) out[i] = numberToBits(values[i], 5, 10);
  }
  return out;
}

/** Encodes values as bfloat16 bit patterns. Float32Array input takes an exact fast path. */
export function encodeBfloat16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  if (values instanceof Float32Array) {
    const u = new Uint32Array(values.buffer, values.byteOffset, values.length);
    for (let i = 0; i < u.length; i++) out[i] = f32BitsToBf16Bits(u[i]);
  } else {
    for (let i = 0; i < values.length; i++) out[i] = numberToBits(values[i], 8, 7);
  }
  return out;
}
