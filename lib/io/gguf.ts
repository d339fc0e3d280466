/**
 * GGUF (version 3), the file format of llama.cpp: a header of typed key-value metadata, then tensor
 * descriptions, then the tensors' data, each aligned. Written here for `export --format gguf`; read back
 * for its tests and for `info`-style checks. Layout, all little-endian:
 *   "GGUF" | u32 version | u64 tensor count | u64 key-value count
 *   key-value: string key | u32 value type | value   (strings: u64 length + UTF-8 bytes; arrays: u32 element
 *              type | u64 count | elements)
 *   tensor:    string name | u32 dims | u64 ne[dims] (ne[0] the fastest-varying axis: a row-major (rows,
 *              cols) matrix has ne = [cols, rows]) | u32 ggml type | u64 offset into the data section
 *   padding to `general.alignment` (32 unless set), then each tensor's bytes at its offset, padded likewise.
 * Only what the exporter writes is supported: F32 and F16 tensors, scalar and array values of the GGUF
 * value types.
 */

import { withAtomicFile, writeAll } from "./atomic.ts";

/** GGUF's value types (gguf.h `gguf_type`). */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
type ScalarType = Exclude<(typeof GgufValueType)[keyof typeof GgufValueType], 9>;

/** A metadata value with its GGUF type: a scalar, or an array of one element type. */
export type GgufValue =
  | { type: ScalarType; value: number | bigint | boolean | string }
  | {
    type: typeof GgufValueType.ARRAY;
    elementType: ScalarType;
    value: (number | bigint | boolean | string)[];
  };

/** ggml tensor types written here (ggml.h `ggml_type`). */
export const GgmlType = { F32: 0, F16: 1 } as const;
export type GgmlTypeId = (typeof GgmlType)[keyof typeof GgmlType];

export interface GgufTensor {
  name: string;
  /** row-major shape, slowest axis first (as safetensors and numpy give it); GGUF stores it reversed */
  shape: number[];
  type: GgmlTypeId;
  /** F32: Float32Array; F16: the half floats' bits */
  data: Float32Array | Uint16Array;
}

export interface GgufFile {
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensor[];
  alignment: number;
}

const MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const DEFAULT_ALIGNMENT = 32;
const SCALAR_BYTES: Record<number, number> = {
  0: 1,
  1: 1,
  2: 2,
  3: 2,
  4: 4,
  5: 4,
  6: 4,
  7: 1,
  10: 8,
  11: 8,
  12: 8,
};

/** A growable little-endian byte buffer. */
class ByteWriter {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  scalar(type: ScalarType, v: number | bigint | boolean | string): void {
    if (type === GgufValueType.STRING) return this.string(v as string);
    this.room(8);
    const o = this.length, d = this.view;
    switch (type) {
      case GgufValueType.UINT8:
        d.setUint8(o, Number(v));
        break;
      case GgufValueType.INT8:
        d.setInt8(o, Number(v));
        break;
      case GgufValueType.UINT16:
        d.setUint16(o, Number(v), true);
        break;
      case GgufValueType.INT16:
        d.setInt16(o, Number(v), true);
        break;
      case GgufValueType.UINT32:
        d.setUint32(o, Number(v), true);
        break;
      case GgufValueType.INT32:
        d.setInt32(o, Number(v), true);
        break;
      case GgufValueType.FLOAT32:
        d.setFloat32(o, Number(v), true);
        break;
      case GgufValueType.BOOL:
        d.setUint8(o, v ? 1 : 0);
        break;
      case GgufValueType.UINT64:
        d.setBigUint64(o, BigInt(v as number | bigint), true);
        break;
      case GgufValueType.INT64:
        d.setBigInt64(o, BigInt(v as number | bigint), true);
        break;
      case GgufValueType.FLOAT64:
        d.setFloat64(o, Number(v), true);
        break;
    }
    this.length += SCALAR_BYTES[type];
  }
  u32(v: number): void {
    this.scalar(GgufValueType.UINT32, v);
  }
  u64(v: number): void {
    this.scalar(GgufValueType.UINT64, BigInt(v));
  }
  string(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  padTo(alignment: number): void {
    const pad = (alignment - (this.length % alignment)) % alignment;
    this.bytes(new Uint8Array(pad));
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

function tensorBytes(t: GgufTensor): Uint8Array {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const want = t.type === GgmlType.F32 ? Float32Array : Uint16Array;
  if (!(t.data instanceof want) || t.data.length !== n) {
    throw new Error(
      `gguf: tensor ${t.name}: expected ${n} values as ${want.name} for shape [${t.shape}], got ${t.data.length}`,
    );
  }
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/**
 * A GGUF file's header (through the padding before the data) and each tensor's bytes with the padding after
 * them: metadata in the given order (general.architecture first, by convention).
 */
function ggufParts(metadata: Map<string, GgufValue>, tensors: GgufTensor[]): Uint8Array[] {
  const alignmentValue = metadata.get("general.alignment")?.value;
  const alignment = typeof alignmentValue === "number" ? alignmentValue : DEFAULT_ALIGNMENT;
  const w = new ByteWriter();
  w.u32(MAGIC);
  w.u32(3);
  w.u64(tensors.length);
  w.u64(metadata.size);
  for (const [key, v] of metadata) {
    w.string(key);
    w.u32(v.type);
    if (v.type === GgufValueType.ARRAY) {
      w.u32(v.elementType);
      w.u64(v.value.length);
      for (const e of v.value) w.scalar(v.elementType, e);
    } else w.scalar(v.type, v.value);
  }
  const datas = tensors.map(tensorBytes);
  let offset = 0;
  tensors.forEach((t, i) => {
    w.string(t.name);
    w.u32(t.shape.length);
    for (const ne of [...t.shape].reverse()) w.u64(ne);
    w.u32(t.type);
    w.u64(offset);
    offset += Math.ceil(datas[i].length / alignment) * alignment;
  });
  w.padTo(alignment);
  const pad = (n: number) => new Uint8Array((alignment - (n % alignment)) % alignment);
  return [w.result(), ...datas.flatMap((d) => [d, pad(d.length)])];
}

/** The bytes of a GGUF file (tests; writeGguf streams large models instead). */
export function encodeGguf(metadata: Map<string, GgufValue>, tensors: GgufTensor[]): Uint8Array {
  const parts = ggufParts(metadata, tensors);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, o), o += p.length;
  return out;
}

/** Writes a GGUF file atomically (a temporary file renamed into place), tensor by tensor. */
export async function writeGguf(
  path: string,
  metadata: Map<string, GgufValue>,
  tensors: GgufTensor[],
): Promise<number> {
  const parts = ggufParts(metadata, tensors);
  await withAtomicFile(path, async (file) => {
    for (const p of parts) await writeAll(file, p);
  });
  return parts.reduce((n, p) => n + p.length, 0);
}

/** Reads a GGUF file's metadata and F32/F16 tensors; `name` labels errors. */
export function decodeGguf(bytes: Uint8Array, name = "<buffer>"): GgufFile {
  const d = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = 0;
  const fail = (what: string): never => {
    throw new Error(`${name}: not a readable GGUF file: ${what} (at byte ${o})`);
  };
  const need = (n: number) => {
    if (o + n > bytes.length) fail(`truncated (wanted ${n} more bytes of ${bytes.length})`);
  };
  const u32 = () => (need(4), o += 4, d.getUint32(o - 4, true));
  const u64 = () => {
    need(8);
    o += 8;
    const v = d.getBigUint64(o - 8, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`a count or size of ${v}`);
    return Number(v);
  };
  const str = () => {
    const n = u64();
    need(n);
    o += n;
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(o - n, o));
  };
  const scalar = (type: number): number | bigint | boolean | string => {
    if (type === GgufValueType.STRING) return str();
    const size = SCALAR_BYTES[type];
    if (size === undefined) return fail(`value type ${type}`);
    need(size);
    const at = o;
    o += size;
    switch (type) {
      case GgufValueType.UINT8:
        return d.getUint8(at);
      case GgufValueType.INT8:
        return d.getInt8(at);
      case GgufValueType.UINT16:
        return d.getUint16(at, true);
      case GgufValueType.INT16:
        return d.getInt16(at, true);
      case GgufValueType.UINT32:
        return d.getUint32(at, true);
      case GgufValueType.INT32:
        return d.getInt32(at, true);
      case GgufValueType.FLOAT32:
        return d.getFloat32(at, true);
      case GgufValueType.BOOL:
        return d.getUint8(at) !== 0;
      case GgufValueType.UINT64:
        return d.getBigUint64(at, true);
      case GgufValueType.INT64:
        return d.getBigInt64(at, true);
      default:
        return d.getFloat64(at, true);
    }
  };
  if (u32() !== MAGIC) fail('magic is not "GGUF"');
  const version = u32();
  if (version !== 3) fail(`version ${version} (3 is read)`);
  const nTensors = u64(), nKv = u64();
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < nKv; i++) {
    const key = str(), type = u32();
    if (type === GgufValueType.ARRAY) {
      const elementType = u32() as ScalarType, n = u64();
      const value = Array.from({ length: n }, () => scalar(elementType));
      metadata.set(key, { type, elementType, value });
    } else metadata.set(key, { type: type as ScalarType, value: scalar(type) });
  }
  const alignmentValue = metadata.get("general.alignment")?.value;
  const alignment = typeof alignmentValue === "number" ? alignmentValue : DEFAULT_ALIGNMENT;
  const infos = Array.from({ length: nTensors }, () => {
    const tensorName = str(), dims = u32();
    const ne = Array.from({ length: dims }, () => u64());
    return { name: tensorName, shape: ne.reverse(), type: u32(), offset: u64() };
  });
  const dataStart = Math.ceil(o / alignment) * alignment;
  const tensors = infos.map((t): GgufTensor => {
    if (t.type !== GgmlType.F32 && t.type !== GgmlType.F16) {
      throw new Error(`${name}: tensor ${t.name}: ggml type ${t.type} is not read here (F32 and F16 are)`);
    }
    const n = t.shape.reduce((a, b) => a * b, 1), size = n * (t.type === GgmlType.F32 ? 4 : 2);
    const at = dataStart + t.offset;
    if (at + size > bytes.length) fail(`tensor ${t.name} runs past the end`);
    const copy = bytes.slice(at, at + size);
    const data = t.type === GgmlType.F32 ? new Float32Array(copy.buffer) : new Uint16Array(copy.buffer);
    return { name: t.name, shape: t.shape, type: t.type as GgmlTypeId, data };
  });
  return { version, metadata, tensors, alignment };
}
