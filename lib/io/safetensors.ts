/**
 * safetensors reader and writer (https://github.com/huggingface/safetensors), in plain TypeScript.
 *
 * File layout: an unsigned 64-bit little-endian header length N, N bytes of UTF-8 JSON header, then the
 * data section. The header maps each tensor name to {dtype, shape, data_offsets: [begin, end]} (offsets
 * relative to the data section) plus an optional "__metadata__" map of strings. The tensors must tile the
 * data section exactly: no gaps, no overlaps, no trailing bytes. Tensor bytes are little-endian, row-major.
 *
 * In memory, a tensor's `data` is a typed array of its storage type: F16 and BF16 are kept as raw 16-bit
 * patterns (Uint16Array) so that reading then writing is bit-exact; use `toFloat32` to get values.
 *
 * Every problem is reported as one `SafetensorsError` whose message names the file and, where it applies,
 * the tensor and what was expected.
 */
import { withAtomicFile, writeAll } from "./atomic.ts";
import { describeFsError, SafetensorsError } from "./errors.ts";
import { decodeBfloat16, decodeFloat16, encodeBfloat16, encodeFloat16 } from "./half.ts";

/** Element types this module reads and writes (safetensors' names). */
export type Dtype =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "U64"
  | "U32"
  | "U16"
  | "U8"
  | "BOOL";

/** The typed array that stores each dtype. */
export interface DtypeStorage {
  F64: Float64Array;
  F32: Float32Array;
  F16: Uint16Array; // raw binary16 bit patterns
  BF16: Uint16Array; // raw bfloat16 bit patterns
  I64: BigInt64Array;
  I32: Int32Array;
  I16: Int16Array;
  I8: Int8Array;
  U64: BigUint64Array;
  U32: Uint32Array;
  U16: Uint16Array;
  U8: Uint8Array;
  BOOL: Uint8Array; // one byte per element, 0 or 1
}

export type TensorData = DtypeStorage[Dtype];

/** A tensor as read from, or written to, a safetensors file. */
export interface Tensor<D extends Dtype = Dtype> {
  dtype: D;
  shape: number[];
  data: DtypeStorage[D];
}

/** A header entry: where a tensor lives, without its data. */
export interface TensorInfo {
  dtype: Dtype;
  shape: number[];
  /** [begin, end) byte offsets relative to the start of the data section. */
  dataOffsets: [number, number];
}

export interface SafetensorsFile {
  /** The path (or label) the tensors came from, for messages. */
  file: string;
  /** Tensors in file (data offset) order. */
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

export interface SafetensorsHeader {
  file: string;
  /** Header entries in file (data offset) order. */
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  /** Absolute byte offset of the data section in the file (8 + header length). */
  dataStart: number;
  /** Size of the data section in bytes. */
  dataLength: number;
}

type ArrayCtor = {
  new (length: number): TensorData;
  new (buffer: ArrayBuffer, byteOffset?: number, length?: number): TensorData;
  readonly BYTES_PER_ELEMENT: number;
};

/** Storage class and size of every supported dtype. */
export const DTYPES: Readonly<Record<Dtype, { itemsize: number; ctor: ArrayCtor; float: boolean }>> = {
  F64: { itemsize: 8, ctor: Float64Array as unknown as ArrayCtor, float: true },
  F32: { itemsize: 4, ctor: Float32Array as unknown as ArrayCtor, float: true },
  F16: { itemsize: 2, ctor: Uint16Array as unknown as ArrayCtor, float: true },
  BF16: { itemsize: 2, ctor: Uint16Array as unknown as ArrayCtor, float: true },
  I64: { itemsize: 8, ctor: BigInt64Array as unknown as ArrayCtor, float: false },
  I32: { itemsize: 4, ctor: Int32Array as unknown as ArrayCtor, float: false },
  I16: { itemsize: 2, ctor: Int16Array as unknown as ArrayCtor, float: false },
  I8: { itemsize: 1, ctor: Int8Array as unknown as ArrayCtor, float: false },
  U64: { itemsize: 8, ctor: BigUint64Array as unknown as ArrayCtor, float: false },
  U32: { itemsize: 4, ctor: Uint32Array as unknown as ArrayCtor, float: false },
  U16: { itemsize: 2, ctor: Uint16Array as unknown as ArrayCtor, float: false },
  U8: { itemsize: 1, ctor: Uint8Array as unknown as ArrayCtor, float: false },
  BOOL: { itemsize: 1, ctor: Uint8Array as unknown as ArrayCtor, float: false },
};

const DTYPE_NAMES = Object.keys(DTYPES) as Dtype[];

/** The reference implementation refuses headers above 100 MB; so do we (a garbage length is likely). */
const MAX_HEADER_BYTES = 100_000_000;

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function isDtype(x: unknown): x is Dtype {
  return typeof x === "string" && Object.hasOwn(DTYPES, x);
}

/** Number of elements of a shape (1 for a scalar, shape []). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

// ===================================================================================================
// Header parsing and validation

/**
 * Validates a header given its raw bytes and the size of the data section that follows it.
 * Exported for tools that read headers themselves; `parseSafetensors` and `readSafetensors` use it.
 */
export function parseHeader(
  headerBytes: Uint8Array,
  dataLength: number,
  file: string,
): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  const fail = (key: string | undefined, msg: string): never => {
    throw new SafetensorsError(
      file,
      key,
      key === undefined ? `${file}: ${msg}` : `${file}: tensor "${key}": ${msg}`,
    );
  };
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(headerBytes);
  } catch {
    return fail(undefined, "header is not valid UTF-8 (not a safetensors file?)");
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return fail(
      undefined,
      `header is not valid JSON (${(err as Error).message}); corrupt or not a safetensors file`,
    );
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return fail(undefined, `header must be a JSON object, found ${describeJson(json)}`);
  }

  let metadata: Record<string, string> = {};
  const entries: [string, TensorInfo][] = [];
  for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
    if (key === "__metadata__") {
      metadata = parseMetadata(value, file);
      continue;
    }
    entries.push([key, parseEntry(key, value, dataLength, fail)]);
  }

  // The tensors must tile the data section: sorted by offset, each begins where the previous ended.
  entries.sort((a, b) =>
    a[1].dataOffsets[0] - b[1].dataOffsets[0] || a[1].dataOffsets[1] - b[1].dataOffsets[1]
  );
  let covered = 0;
  let prevKey: string | undefined;
  for (const [key, info] of entries) {
    const [begin, end] = info.dataOffsets;
    if (begin > covered) {
      fail(
        key,
        `data_offsets [${begin}, ${end}] leave bytes [${covered}, ${begin}) of the data section unused ` +
          `(tensors must be contiguous)`,
      );
    }
    if (begin < covered) {
      fail(key, `data_offsets [${begin}, ${end}] overlap tensor "${prevKey}" (which ends at ${covered})`);
    }
    covered = end;
    prevKey = key;
  }
  if (covered !== dataLength) {
    fail(
      undefined,
      `data section is ${dataLength} bytes but the tensors cover ${covered}: ` +
        `${dataLength - covered} trailing bytes belong to no tensor`,
    );
  }
  return { tensors: new Map(entries), metadata };
}

function parseMetadata(value: unknown, file: string): Record<string, string> {
  const where = `${file}: "__metadata__"`;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new SafetensorsError(
      file,
      "__metadata__",
      `${where} must be an object of strings, found ${describeJson(value)}`,
    );
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== "string") {
      throw new SafetensorsError(
        file,
        "__metadata__",
        `${where}: value of "${k}" must be a string, found ${describeJson(v)}`,
      );
    }
    out[k] = v;
  }
  return out;
}

function parseEntry(
  key: string,
  value: unknown,
  dataLength: number,
  fail: (key: string | undefined, msg: string) => never,
): TensorInfo {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return fail(key, `entry must be an object {dtype, shape, data_offsets}, found ${describeJson(value)}`);
  }
  const entry = value as Record<string, unknown>;
  for (const field of Object.keys(entry)) {
    if (field !== "dtype" && field !== "shape" && field !== "data_offsets") {
      fail(key, `unknown field "${field}" (expected only dtype, shape, data_offsets)`);
    }
  }
  const { dtype, shape, data_offsets: offsets } = entry;
  if (!isDtype(dtype)) {
    return fail(
      key,
      dtype === undefined
        ? "missing dtype"
        : `unknown dtype ${describeJson(dtype)} (supported: ${DTYPE_NAMES.join(", ")})`,
    );
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    return fail(key, `shape must be an array of non-negative integers, found ${describeJson(shape)}`);
  }
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]
  ) {
    return fail(
      key,
      `data_offsets must be [begin, end] with 0 <= begin <= end, found ${describeJson(offsets)}`,
    );
  }
  const [begin, end] = offsets as [number, number];
  const nbytes = numel(shape) * DTYPES[dtype].itemsize;
  if (!Number.isSafeInteger(nbytes)) return fail(key, `shape ${formatShape(shape)} is too large`);
  if (end - begin !== nbytes) {
    fail(
      key,
      `data_offsets [${begin}, ${end}] hold ${end - begin} bytes but shape ${formatShape(shape)} ` +
        `${dtype} needs ${nbytes}`,
    );
  }
  if (end > dataLength) {
    fail(
      key,
      `data_offsets [${begin}, ${end}] run past the end of the data section (${dataLength} bytes): ` +
        `the file is truncated`,
    );
  }
  return { dtype, shape: shape.slice(), dataOffsets: [begin, end] };
}

/** Short description of a JSON value for messages (type plus a clipped rendering). */
function describeJson(v: unknown): string {
  if (v === undefined) return "nothing";
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Reads the 8-byte little-endian header length, checking it against the file size. */
function headerLength(first8: Uint8Array, totalBytes: number, file: string): number {
  if (totalBytes < 8) {
    throw new SafetensorsError(
      file,
      undefined,
      `${file}: file is ${totalBytes} bytes, too short for the 8-byte header length (empty or truncated file)`,
    );
  }
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(totalBytes - 8)) {
    throw new SafetensorsError(
      file,
      undefined,
      `${file}: header length ${n} runs past the end of the file (${totalBytes} bytes): ` +
        `truncated, or not a safetensors file`,
    );
  }
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(
      file,
      undefined,
      `${file}: header length ${n} exceeds 100 MB: not a safetensors file?`,
    );
  }
  if (n < 2n) {
    throw new SafetensorsError(file, undefined, `${file}: header length ${n} is too small for a JSON object`);
  }
  return Number(n);
}

// ===================================================================================================
// Reading

/** Parses a whole safetensors file held in memory. Tensor data is copied (aligned, independent). */
export function parseSafetensors(bytes: Uint8Array, name = "<buffer>"): SafetensorsFile {
  const n = headerLength(bytes.subarray(0, 8), bytes.length, name);
  const dataStart = 8 + n;
  const { tensors: infos, metadata } = parseHeader(
    bytes.subarray(8, dataStart),
    bytes.length - dataStart,
    name,
  );
  const tensors = new Map<string, Tensor>();
  for (const [key, info] of infos) {
    const [begin, end] = info.dataOffsets;
    tensors.set(key, makeTensor(info, bytes.subarray(dataStart + begin, dataStart + end)));
  }
  return { file: name, tensors, metadata };
}

export interface ReadOptions {
  /** Read only these tensors (each must exist); default: all. */
  keys?: readonly string[];
}

/**
 * Reads a safetensors file tensor by tensor (never the whole file as one buffer, so multi-GB checkpoints
 * load as long as each tensor fits in memory).
 */
export async function readSafetensors(path: string, options: ReadOptions = {}): Promise<SafetensorsFile> {
  return await withOpenFile(path, async (file, size) => {
    const header = await readHeaderFrom(file, size, path);
    let wanted = [...header.tensors.keys()];
    if (options.keys) {
      for (const k of options.keys) {
        if (!header.tensors.has(k)) throw missingTensorError(path, k, header.tensors.keys());
      }
      const set = new Set(options.keys);
      wanted = wanted.filter((k) => set.has(k));
    }
    const tensors = new Map<string, Tensor>();
    for (const key of wanted) {
      const info = header.tensors.get(key)!;
      const [begin, end] = info.dataOffsets;
      const raw = new Uint8Array(end - begin);
      await readExactlyAt(file, header.dataStart + begin, raw, path, key);
      tensors.set(key, makeTensor(info, raw, true));
    }
    return { file: path, tensors, metadata: header.metadata };
  });
}

/** Reads and validates only the header (names, dtypes, shapes, metadata) of a safetensors file. */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  return await withOpenFile(path, (file, size) => readHeaderFrom(file, size, path));
}

async function readHeaderFrom(file: Deno.FsFile, size: number, path: string): Promise<SafetensorsHeader> {
  const first8 = new Uint8Array(Math.min(8, size));
  await readExactlyAt(file, 0, first8, path);
  const n = headerLength(first8, size, path);
  const headerBytes = new Uint8Array(n);
  await readExactlyAt(file, 8, headerBytes, path);
  const dataStart = 8 + n;
  const { tensors, metadata } = parseHeader(headerBytes, size - dataStart, path);
  return { file: path, tensors, metadata, dataStart, dataLength: size - dataStart };
}

async function withOpenFile<T>(
  path: string,
  body: (file: Deno.FsFile, size: number) => Promise<T>,
): Promise<T> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (err) {
    throw new SafetensorsError(path, undefined, `${path}: cannot open: ${describeFsError(err)}`, {
      cause: err,
    });
  }
  try {
    const stat = await file.stat();
    if (!stat.isFile) {
      throw new SafetensorsError(path, undefined, `${path}: cannot open: not a regular file (a directory?)`);
    }
    return await body(file, stat.size);
  } finally {
    file.close();
  }
}

async function readExactlyAt(
  file: Deno.FsFile,
  position: number,
  into: Uint8Array,
  path: string,
  key?: string,
): Promise<void> {
  await file.seek(position, Deno.SeekMode.Start);
  let done = 0;
  while (done < into.length) {
    let n: number | null;
    try {
      n = await file.read(into.subarray(done));
    } catch (err) {
      throw new SafetensorsError(path, key, `${path}: read error: ${describeFsError(err)}`, { cause: err });
    }
    if (n === null) {
      // Only reachable if the file shrank after we checked its size.
      const what = key === undefined ? "" : ` tensor "${key}":`;
      throw new SafetensorsError(
        path,
        key,
        `${path}:${what} unexpected end of file (file truncated while reading?)`,
      );
    }
    done += n;
  }
}

/**
 * Builds a tensor from its little-endian bytes. Unless `owned` (a fresh buffer of exactly these bytes,
 * as readSafetensors reads them), the bytes are copied: the result is aligned and independent of `raw`.
 */
function makeTensor(info: TensorInfo, raw: Uint8Array, owned = false): Tensor {
  const { ctor, itemsize } = DTYPES[info.dtype];
  let bytes: Uint8Array;
  if (owned && raw.byteOffset === 0 && raw.byteLength === raw.buffer.byteLength) {
    bytes = raw;
  } else {
    bytes = new Uint8Array(raw.length);
    bytes.set(raw);
  }
  const buf = bytes.buffer as ArrayBuffer;
  if (!LITTLE_ENDIAN_HOST) swapBytes(bytes, itemsize);
  return { dtype: info.dtype, shape: info.shape.slice(), data: new ctor(buf, 0, raw.length / itemsize) };
}

function swapBytes(bytes: Uint8Array, itemsize: number): void {
  if (itemsize === 1) return;
  for (let i = 0; i < bytes.length; i += itemsize) bytes.subarray(i, i + itemsize).reverse();
}

function missingTensorError(file: string, key: string, keys: Iterable<string>): SafetensorsError {
  const all = [...keys];
  const shown = all.slice(0, 8).map((k) => `"${k}"`).join(", ");
  const more = all.length > 8 ? `, ... (${all.length} in all)` : "";
  return new SafetensorsError(
    file,
    key,
    `${file}: no tensor "${key}" (the file holds ${shown || "no tensors"}${more})`,
  );
}

// ===================================================================================================
// Access helpers

/** Where a tensor came from, for messages of the converters below. */
export interface TensorLabel {
  file?: string;
  key?: string;
}

function labelText(label: TensorLabel | undefined): string {
  const file = label?.file ?? "<tensors>";
  return label?.key === undefined ? `${file}:` : `${file}: tensor "${label.key}":`;
}

/**
 * The tensor's values as float32. F32 returns the stored array itself (no copy); F16, BF16 and F64 are
 * converted (F64 rounds to nearest). Integer and BOOL tensors are refused: use `toInt32`.
 */
export function toFloat32(t: Tensor, label?: TensorLabel): Float32Array {
  switch (t.dtype) {
    case "F32":
      return t.data as Float32Array;
    case "F16":
      return decodeFloat16(t.data as Uint16Array);
    case "BF16":
      return decodeBfloat16(t.data as Uint16Array);
    case "F64":
      return Float32Array.from(t.data as Float64Array);
    default:
      throw new SafetensorsError(
        label?.file ?? "<tensors>",
        label?.key,
        `${labelText(label)} dtype ${t.dtype} is not a floating-point type (expected F32, F16, BF16 or F64)`,
      );
  }
}

/**
 * The tensor's values as int32. I32 returns the stored array itself; other integer types and BOOL are
 * converted, and a value outside the int32 range is an error. Floating-point tensors are refused.
 */
export function toInt32(t: Tensor, label?: TensorLabel): Int32Array {
  const fail = (msg: string): never => {
    throw new SafetensorsError(label?.file ?? "<tensors>", label?.key, `${labelText(label)} ${msg}`);
  };
  switch (t.dtype) {
    case "I32":
      return t.data as Int32Array;
    case "I16":
    case "I8":
    case "U16":
    case "U8":
    case "BOOL":
      return Int32Array.from(t.data as ArrayLike<number>);
    case "U32": {
      const d = t.data as Uint32Array;
      const out = new Int32Array(d.length);
      for (let i = 0; i < d.length; i++) {
        if (d[i] > 0x7fffffff) fail(`U32 value ${d[i]} at index ${i} does not fit in int32`);
        out[i] = d[i];
      }
      return out;
    }
    case "I64":
    case "U64": {
      const d = t.data as BigInt64Array | BigUint64Array;
      const out = new Int32Array(d.length);
      for (let i = 0; i < d.length; i++) {
        const v = d[i];
        if (v < -2147483648n || v > 2147483647n) {
          fail(`${t.dtype} value ${v} at index ${i} does not fit in int32`);
        }
        out[i] = Number(v);
      }
      return out;
    }
    default:
      return fail(`dtype ${t.dtype} is not an integer type (expected I32, I64 or another integer dtype)`);
  }
}

/** The tensor `key` of a file, or an error naming the file and the key. */
export function getTensor(sf: SafetensorsFile, key: string): Tensor {
  const t = sf.tensors.get(key);
  if (!t) throw missingTensorError(sf.file, key, sf.tensors.keys());
  return t;
}

/** `toFloat32` of tensor `key`, with errors naming the file and key. */
export function getFloat32(sf: SafetensorsFile, key: string): { shape: number[]; data: Float32Array } {
  const t = getTensor(sf, key);
  return { shape: t.shape, data: toFloat32(t, { file: sf.file, key }) };
}

/** `toInt32` of tensor `key`, with errors naming the file and key. */
export function getInt32(sf: SafetensorsFile, key: string): { shape: number[]; data: Int32Array } {
  const t = getTensor(sf, key);
  return { shape: t.shape, data: toInt32(t, { file: sf.file, key }) };
}

// ===================================================================================================
// Writing

/**
 * A tensor to write. `data` is either the dtype's storage array (see `DtypeStorage`; for F16/BF16 the raw
 * bit patterns) or, for convenience, plain values: numbers (any array-like) for every dtype, which are
 * rounded to nearest-even for F16/BF16/F32 and must be exact integers in range for integer dtypes.
 */
export interface TensorInput {
  dtype: Dtype;
  shape: readonly number[];
  data: TensorData | ArrayLike<number>;
}

export type TensorsInput = Record<string, TensorInput> | Map<string, TensorInput>;

interface Prepared {
  key: string;
  dtype: Dtype;
  shape: number[];
  bytes: Uint8Array; // little-endian
  begin: number;
  end: number;
}

/**
 * Validates the tensors and lays out the file: data sorted by element size (largest first) then name, so
 * every tensor is aligned to its element size (the data section starts 8-byte aligned); header keys
 * sorted; header padded with spaces to a multiple of 8, as the reference implementation does.
 */
function prepare(
  tensors: TensorsInput,
  metadata: Record<string, string> | undefined,
  file: string,
): { header: Uint8Array; parts: Prepared[] } {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const parts: Omit<Prepared, "begin" | "end">[] = [];
  const seen = new Set<string>();
  for (const [key, t] of entries) {
    if (key === "" || key === "__metadata__") {
      throw new SafetensorsError(
        file,
        key,
        `${file}: tensor name ${JSON.stringify(key)} is reserved or empty`,
      );
    }
    if (seen.has(key)) throw new SafetensorsError(file, key, `${file}: tensor "${key}" given twice`);
    seen.add(key);
    parts.push(prepareTensor(key, t, file));
  }
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        throw new SafetensorsError(
          file,
          "__metadata__",
          `${file}: metadata "${k}" must be a string, got ${typeof v}`,
        );
      }
    }
  }

  parts.sort((a, b) => DTYPES[b.dtype].itemsize - DTYPES[a.dtype].itemsize || compareStrings(a.key, b.key));
  let offset = 0;
  const laidOut: Prepared[] = parts.map((p) => {
    const begin = offset;
    offset += p.bytes.length;
    return { ...p, begin, end: offset };
  });

  // Build the JSON by hand: JS objects would move integer-like keys ("0", "1") to the front.
  const fields: string[] = [];
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    const m = Object.keys(metadata).sort(compareStrings).map((k) =>
      `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`
    );
    fields.push(`"__metadata__":{${m.join(",")}}`);
  }
  for (const p of [...laidOut].sort((a, b) => compareStrings(a.key, b.key))) {
    fields.push(
      `${JSON.stringify(p.key)}:{"dtype":"${p.dtype}","shape":[${p.shape.join(",")}],` +
        `"data_offsets":[${p.begin},${p.end}]}`,
    );
  }
  const json = new TextEncoder().encode(`{${fields.join(",")}}`);
  const padded = Math.ceil(json.length / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20); // spaces
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  return { header, parts: laidOut };
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function prepareTensor(key: string, t: TensorInput, file: string): Omit<Prepared, "begin" | "end"> {
  const fail = (msg: string): never => {
    throw new SafetensorsError(file, key, `${file}: tensor "${key}": ${msg}`);
  };
  if (typeof t !== "object" || t === null) return fail("expected {dtype, shape, data}");
  if (!isDtype(t.dtype)) {
    return fail(`unknown dtype ${describeJson(t.dtype)} (supported: ${DTYPE_NAMES.join(", ")})`);
  }
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    return fail(`shape must be an array of non-negative integers, got ${describeJson(t.shape)}`);
  }
  const shape = t.shape.slice();
  const n = numel(shape);
  if (!Number.isSafeInteger(n * DTYPES[t.dtype].itemsize)) {
    return fail(`shape ${formatShape(shape)} is too large`);
  }
  const data = t.data as ArrayLike<number> | undefined;
  if (data === null || typeof data !== "object" || typeof data.length !== "number") {
    return fail(`data must be a typed array or an array of numbers, got ${typeof data}`);
  }
  if (data.length !== n) {
    fail(`shape ${formatShape(shape)} needs ${n} elements but data holds ${data.length}`);
  }
  const stored = toStorage(t.dtype, t.data, fail);
  let bytes = new Uint8Array(stored.buffer, stored.byteOffset, stored.byteLength);
  if (!LITTLE_ENDIAN_HOST) {
    bytes = bytes.slice();
    swapBytes(bytes, DTYPES[t.dtype].itemsize);
  }
  return { key, dtype: t.dtype, shape, bytes };
}

const INT_RANGES: Partial<Record<Dtype, [number, number]>> = {
  I32: [-2147483648, 2147483647],
  I16: [-32768, 32767],
  I8: [-128, 127],
  U32: [0, 4294967295],
  U16: [0, 65535],
  U8: [0, 255],
  BOOL: [0, 1],
  I64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  U64: [0, Number.MAX_SAFE_INTEGER],
};

/** Converts `data` into the storage array of `dtype` (no copy when it already is one). */
function toStorage(
  dtype: Dtype,
  data: TensorData | ArrayLike<number>,
  fail: (msg: string) => never,
): TensorData {
  const { ctor } = DTYPES[dtype];
  if (data instanceof ctor) return data as TensorData;
  const name = (data as object).constructor?.name ?? typeof data;
  // Typed arrays of another kind would be silently reinterpreted or rounded: accept only the unambiguous
  // conversions, i.e. float values into float dtypes and integer arrays into integer dtypes.
  const isFloatArray = data instanceof Float32Array || data instanceof Float64Array;
  const isBigArray = data instanceof BigInt64Array || data instanceof BigUint64Array;
  if (isBigArray) return fail(`data is a ${name}, but dtype ${dtype} is stored as ${ctor.name}`);
  switch (dtype) {
    case "F16":
    case "BF16":
      if (ArrayBuffer.isView(data) && !isFloatArray) {
        return fail(
          `data is a ${name}; give ${dtype} as Uint16Array bit patterns or Float32Array/Float64Array values`,
        );
      }
      return dtype === "F16"
        ? encodeFloat16(data as ArrayLike<number>)
        : encodeBfloat16(data as ArrayLike<number>);
    case "F32":
    case "F64":
      if (ArrayBuffer.isView(data) && !isFloatArray) {
        return fail(`data is a ${name}, but dtype ${dtype} is stored as ${ctor.name}`);
      }
      return (ctor as unknown as { from(a: ArrayLike<number>): TensorData }).from(data as ArrayLike<number>);
    default: {
      if (isFloatArray) {
        return fail(`data is a ${name}, but dtype ${dtype} is an integer type (${ctor.name})`);
      }
      const [lo, hi] = INT_RANGES[dtype]!;
      const values = data as ArrayLike<number>;
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) {
          fail(`value ${v} at index ${i} is not a ${dtype} integer (range ${lo}..${hi})`);
        }
      }
      if (dtype === "I64") return BigInt64Array.from(values as ArrayLike<number>, (v) => BigInt(v));
      if (dtype === "U64") return BigUint64Array.from(values as ArrayLike<number>, (v) => BigInt(v));
      return (ctor as unknown as { from(a: ArrayLike<number>): TensorData }).from(values);
    }
  }
}

/** Serialises tensors to the bytes of a safetensors file (in memory). */
export function serializeSafetensors(
  tensors: TensorsInput,
  metadata?: Record<string, string>,
  name = "<buffer>",
): Uint8Array {
  const { header, parts } = prepare(tensors, metadata, name);
  const total = header.length + (parts.length ? parts[parts.length - 1].end : 0);
  const out = new Uint8Array(total);
  out.set(header, 0);
  for (const p of parts) out.set(p.bytes, header.length + p.begin);
  return out;
}

/**
 * Writes tensors to `path` as safetensors, atomically: everything is validated before any file is
 * created, the bytes go to a temporary file next to `path`, which is synced and renamed over `path`.
 * On any failure no file is left behind and `path` keeps its previous content.
 */
export async function writeSafetensors(
  path: string,
  tensors: TensorsInput,
  metadata?: Record<string, string>,
  options: { createParents?: boolean } = {},
): Promise<void> {
  const { header, parts } = prepare(tensors, metadata, path);
  await withAtomicFile(path, async (file) => {
    await writeAll(file, header);
    // Stream tensor by tensor: no second copy of a multi-GB checkpoint in memory.
    for (const p of parts) await writeAll(file, p.bytes);
  }, options);
}
