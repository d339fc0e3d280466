// Tests of lib/io (safetensors read/write, float16/bfloat16, atomic writes) and of the Mamba config and
// checkpoint files (lib/models: mamba_ssm / Hugging Face configs, state-dict checks, checkpoints). Bad input must fail with ONE InputError naming the file and key.
import assert from "node:assert/strict";
import {
  atomicWriteFile,
  bfloat16BitsToNumber,
  ConfigError,
  decodeBfloat16,
  decodeFloat16,
  encodeBfloat16,
  encodeFloat16,
  FileWriteError,
  float16BitsToNumber,
  getFloat32,
  getInt32,
  InputError,
  numberToBfloat16Bits,
  numberToFloat16Bits,
  parseSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  SafetensorsError,
  serializeSafetensors,
  StateDictError,
  type Tensor,
  type TensorInput,
  toFloat32,
  toInt32,
  writeSafetensors,
} from "../lib/io/mod.ts";
import {
  checkStateDict,
  configToJson,
  dInner,
  dtRank,
  expectedStateDictShapes,
  type MambaConfig,
  paddedVocab,
  parseMambaConfig,
  readMambaConfig,
} from "../lib/models/mamba_config.ts";
import { readCheckpoint, writeCheckpoint } from "../lib/models/checkpoint.ts";

const FIXTURES = decodeURIComponent(new URL("./fixtures/reference/", import.meta.url).pathname);
const TINY_MODEL = `${FIXTURES}mambabyte-tiny-public.model.safetensors`;
const TINY_EXPECTED = `${FIXTURES}mambabyte-tiny-public.expected.safetensors`;
const TINY_JSON = `${FIXTURES}mambabyte-tiny-public.json`;

async function tinyFixture(): Promise<{ config: Record<string, unknown>; keys: Record<string, number[]> }> {
  return JSON.parse(await Deno.readTextFile(TINY_JSON));
}

async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "io_test_" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * Asserts that `fn` fails with exactly one InputError (of class `cls`) whose message contains every
 * string in `parts` (typically the file name and the key), and returns the message.
 */
async function expectInputError(
  fn: () => unknown,
  cls: new (...args: any[]) => InputError,
  parts: string[],
): Promise<string> {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught !== undefined, `expected ${cls.name}, nothing was thrown`);
  assert.ok(
    caught instanceof cls,
    `expected ${cls.name}, got ${(caught as Error)?.name}: ${(caught as Error)?.message}`,
  );
  const msg = (caught as Error).message;
  for (const p of parts) assert.ok(msg.includes(p), `message lacks ${JSON.stringify(p)}: ${msg}`);
  assert.ok(!msg.includes("\n"), `message should be one line: ${msg}`);
  return msg;
}

/** Builds a safetensors file from a raw header object and data bytes (to craft broken files). */
function rawSafetensors(header: unknown, data: Uint8Array, headerText?: string): Uint8Array {
  const json = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

// ===================================================================================================
// float16 / bfloat16

Deno.test("float16: known values, rounding ties, subnormals, overflow, inf, NaN", () => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1.0, 0x3c00],
    [-2.5, 0xc100],
    [0.1, 0x2e66],
    [65504, 0x7bff], // largest finite
    [65519, 0x7bff], // just below the tie to infinity
    [65520, 0x7c00], // tie between 65504 and 2^16: rounds to even = infinity
    [1e6, 0x7c00],
    [-1e6, 0xfc00],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [1023 * 2 ** -24, 0x03ff], // largest subnormal
    [2 ** -25, 0x0000], // half of the smallest subnormal: tie, rounds to even (0)
    [1.5 * 2 ** -25, 0x0001],
    [3 * 2 ** -25, 0x0002], // 1.5 units: tie, rounds to even (2)
    [5 * 2 ** -25, 0x0002], // 2.5 units: tie, rounds to even (2)
    [-(2 ** -24), 0x8001],
    [1 + 2 ** -11, 0x3c00], // tie between 1 and 1 + 2^-10: even is 1
    [1 + 3 * 2 ** -11, 0x3c02], // tie between odd and even neighbours: up to even
    [1 + 2 ** -11 + 2 ** -40, 0x3c01], // just above the tie; rounding via float32 first would give 0x3c00
    [2047 * 2 ** -25, 0x0400], // largest subnormal + half a unit: tie, rounds to even = smallest normal
  ];
  for (const [x, bits] of cases) {
    assert.equal(numberToFloat16Bits(x), bits, `numberToFloat16Bits(${x})`);
    if (Math.fround(x) === x) {
      assert.equal(encodeFloat16(new Float32Array([x]))[0], bits, `encodeFloat16 fast path (${x})`);
    }
  }
  const nan = numberToFloat16Bits(NaN);
  assert.equal(nan & 0x7c00, 0x7c00);
  assert.notEqual(nan & 0x03ff, 0);
  assert.ok(Number.isNaN(float16BitsToNumber(nan)));
  assert.equal(float16BitsToNumber(0x0001), 2 ** -24);
  assert.equal(float16BitsToNumber(0x3555), 0.333251953125);
  assert.equal(float16BitsToNumber(0x7bff), 65504);
  assert.equal(float16BitsToNumber(0xfc00), -Infinity);
  assert.ok(Object.is(float16BitsToNumber(0x8000), -0));
});

Deno.test("bfloat16: known values, rounding ties, subnormals, overflow, inf, NaN", () => {
  const f32max = 3.4028234663852886e38;
  const cases: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1.0, 0x3f80],
    [-2.5, 0xc020],
    [Math.fround(Math.PI), 0x4049],
    [65504, 0x4780], // 65504 is not a bfloat16: rounds to 65536
    [1 + 2 ** -8, 0x3f80], // tie: down to even
    [1 + 3 * 2 ** -8, 0x3f82], // tie: up to even
    [3.3895313892515355e38, 0x7f7f], // largest finite bfloat16
    [f32max, 0x7f80], // rounds past the largest finite: infinity
    [Infinity, 0x7f80],
    [-Infinity, 0xff80],
    [2 ** -133, 0x0001], // smallest subnormal
    [2 ** -134, 0x0000], // tie with zero: even
    [2 ** -126, 0x0080], // smallest normal
  ];
  for (const [x, bits] of cases) {
    assert.equal(numberToBfloat16Bits(x), bits, `numberToBfloat16Bits(${x})`);
    if (Math.fround(x) === x) {
      assert.equal(encodeBfloat16(new Float32Array([x]))[0], bits, `encodeBfloat16 fast path (${x})`);
    }
  }
  const nan = encodeBfloat16(new Float32Array([NaN]))[0];
  assert.ok(Number.isNaN(bfloat16BitsToNumber(nan)));
  assert.equal(bfloat16BitsToNumber(0x3f80), 1);
  assert.equal(bfloat16BitsToNumber(0x0001), 2 ** -133);
});

Deno.test("float16/bfloat16: every bit pattern decodes and re-encodes to itself", () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  for (
    const [decode, encode, nanMask] of [
      [decodeFloat16, encodeFloat16, 0x7c00],
      [decodeBfloat16, encodeBfloat16, 0x7f80],
    ] as const
  ) {
    const values = decode(all);
    const back = encode(values);
    for (let h = 0; h < 65536; h++) {
      const isNaN = (h & nanMask) === nanMask && (h & ~nanMask & 0x7fff) !== 0;
      // NaNs come back quiet (top mantissa bit set) with sign and payload otherwise kept.
      const quiet = nanMask === 0x7c00 ? 0x0200 : 0x0040;
      assert.equal(back[h], isNaN ? h | quiet : h, `pattern 0x${h.toString(16)}`);
    }
    // The float64 path agrees with the float32 fast path on every finite value.
    const viaNumbers = encode(Array.from(values));
    for (let h = 0; h < 65536; h++) if (!Number.isNaN(values[h])) assert.equal(viaNumbers[h], back[h]);
  }
});

Deno.test("float16/bfloat16: float32 fast path equals exact float64 rounding on random float32", () => {
  // Random bit patterns cover every exponent, including the subnormal and overflow regions.
  const n = 200_000;
  const bits = new Uint32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    bits[i] = s;
  }
  // Also values right at and around the rounding boundaries of float16.
  const f = new Float32Array(bits.buffer);
  const f16 = encodeFloat16(f);
  const bf16 = encodeBfloat16(f);
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(f[i])) continue;
    assert.equal(f16[i], numberToFloat16Bits(f[i]), `f16 of ${f[i]}`);
    assert.equal(bf16[i], numberToBfloat16Bits(f[i]), `bf16 of ${f[i]}`);
  }
});

// ===================================================================================================
// safetensors: round trips and layout

function everyDtype(): Record<string, TensorInput> {
  const f16Specials = new Uint16Array([
    0x0000,
    0x8000,
    0x3c00,
    0x7bff,
    0x0001,
    0x7c00,
    0xfc00,
    0x7e01,
    0xfd55,
  ]);
  return {
    "f64": { dtype: "F64", shape: [3], data: new Float64Array([Math.PI, -0, 1e-310]) },
    "f32": { dtype: "F32", shape: [2, 3], data: new Float32Array([1, -2.5, NaN, Infinity, 1e-40, -0]) },
    "f16": { dtype: "F16", shape: [3, 3], data: f16Specials },
    "bf16": {
      dtype: "BF16",
      shape: [9],
      data: new Uint16Array([0x3f80, 0xc020, 0x7f80, 0x7fc1, 0x0001, 0, 0x8000, 0x7f7f, 1]),
    },
    "i64": { dtype: "I64", shape: [3], data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 0n]) },
    "i32": { dtype: "I32", shape: [2], data: new Int32Array([-2147483648, 2147483647]) },
    "i16": { dtype: "I16", shape: [2], data: new Int16Array([-32768, 32767]) },
    "i8": { dtype: "I8", shape: [3], data: new Int8Array([-128, 0, 127]) },
    "u64": { dtype: "U64", shape: [1], data: new BigUint64Array([2n ** 64n - 1n]) },
    "u32": { dtype: "U32", shape: [1], data: new Uint32Array([4294967295]) },
    "u16": { dtype: "U16", shape: [1], data: new Uint16Array([65535]) },
    "u8": { dtype: "U8", shape: [1, 1, 2], data: new Uint8Array([0, 255]) },
    "bool": { dtype: "BOOL", shape: [3], data: new Uint8Array([1, 0, 1]) },
    "scalar": { dtype: "F32", shape: [], data: new Float32Array([7]) },
    "empty": { dtype: "F32", shape: [0, 4], data: new Float32Array(0) },
  };
}

function assertSameTensors(got: Map<string, Tensor>, want: Record<string, TensorInput>): void {
  assert.deepEqual([...got.keys()].sort(), Object.keys(want).sort());
  for (const [key, w] of Object.entries(want)) {
    const g = got.get(key)!;
    assert.equal(g.dtype, w.dtype, key);
    assert.deepEqual(g.shape, w.shape, key);
    assert.equal(g.data.constructor, (w.data as object).constructor, key);
    assert.deepEqual(bytesOf(g.data), bytesOf(w.data as ArrayBufferView), `${key}: bytes differ`);
  }
}

Deno.test("safetensors: every dtype round-trips bit-exactly (file and memory)", async () => {
  const tensors = everyDtype();
  const metadata = { format: "pt", note: 'héllo "quoted"' };
  const mem = parseSafetensors(serializeSafetensors(tensors, metadata));
  assertSameTensors(mem.tensors, tensors);
  assert.deepEqual(mem.metadata, metadata);

  await withTempDir(async (dir) => {
    const path = `${dir}/all.safetensors`;
    await writeSafetensors(path, new Map(Object.entries(tensors)), metadata);
    const sf = await readSafetensors(path);
    assertSameTensors(sf.tensors, tensors);
    assert.deepEqual(sf.metadata, metadata);
    assert.deepEqual(await listDir(dir), ["all.safetensors"], "no temporary file left");
    // Same bytes as the in-memory serialiser: the layout is deterministic.
    assert.deepEqual(await Deno.readFile(path), serializeSafetensors(tensors, metadata, path));
    // Reading a subset.
    const some = await readSafetensors(path, { keys: ["i8", "f16"] });
    assert.deepEqual([...some.tensors.keys()].sort(), ["f16", "i8"]);
  });
});

Deno.test("safetensors: header padded with spaces to 8 bytes, keys sorted, tensors aligned", () => {
  for (const extra of ["", "a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg"]) {
    const tensors = everyDtype();
    tensors[`name${extra}`] = { dtype: "BF16", shape: [1], data: new Uint16Array([1]) };
    const bytes = serializeSafetensors(tensors, extra ? { extra } : undefined);
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal(n % 8, 0, "header length is a multiple of 8");
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    assert.match(text, /^\{.*\} *$/s);
    const header = JSON.parse(text);
    const keys = Object.keys(JSON.parse(text.replace(/"(\d+)":/g, '"#$1":'))); // keep JSON order
    if (extra) assert.equal(keys[0], "__metadata__");
    const names = keys.filter((k) => k !== "__metadata__");
    assert.deepEqual(names, [...names].sort(), "header keys sorted");
    for (const name of names) {
      const { dtype, data_offsets: [begin] } = header[name];
      const size = { F64: 8, I64: 8, U64: 8, F32: 4, I32: 4, U32: 4, F16: 2, BF16: 2, I16: 2, U16: 2 }[
        dtype as string
      ] ?? 1;
      assert.equal((8 + n + begin) % size, 0, `${name} aligned to ${size}`);
    }
  }
});

Deno.test("safetensors: convenience inputs are converted (numbers, Float32Array to F16/BF16, I64)", () => {
  const sf = parseSafetensors(serializeSafetensors({
    h: { dtype: "F16", shape: [2], data: new Float32Array([1, -2.5]) },
    b: { dtype: "BF16", shape: [2], data: [1, -2.5] },
    f: { dtype: "F32", shape: [2], data: [0.5, 3] },
    l: { dtype: "I64", shape: [2], data: new Int32Array([-5, 7]) },
    i: { dtype: "I32", shape: [2], data: [1, -1] },
  }));
  assert.deepEqual(Array.from(sf.tensors.get("h")!.data as Uint16Array), [0x3c00, 0xc100]);
  assert.deepEqual(Array.from(sf.tensors.get("b")!.data as Uint16Array), [0x3f80, 0xc020]);
  assert.deepEqual(Array.from(toFloat32(sf.tensors.get("f")!)), [0.5, 3]);
  assert.deepEqual(Array.from(toInt32(sf.tensors.get("l")!)), [-5, 7]);
  assert.deepEqual(Array.from(toFloat32(sf.tensors.get("h")!)), [1, -2.5]);
  assert.deepEqual(Array.from(toFloat32(sf.tensors.get("b")!)), [1, -2.5]);
  assert.deepEqual(Array.from(getInt32(sf, "i").data), [1, -1]);
});

Deno.test("safetensors: toFloat32 / toInt32 refuse what they cannot represent", async () => {
  const sf = parseSafetensors(
    serializeSafetensors({
      big: { dtype: "I64", shape: [2], data: new BigInt64Array([1n, 2n ** 40n]) },
      f: { dtype: "F32", shape: [1], data: new Float32Array([1]) },
    }),
    "t.safetensors",
  );
  await expectInputError(() => getInt32(sf, "big"), SafetensorsError, [
    "t.safetensors",
    '"big"',
    "1099511627776",
    "int32",
  ]);
  await expectInputError(() => getFloat32(sf, "big"), SafetensorsError, ["t.safetensors", '"big"', "I64"]);
  await expectInputError(() => getInt32(sf, "f"), SafetensorsError, ["t.safetensors", '"f"', "F32"]);
  await expectInputError(() => getFloat32(sf, "nope"), SafetensorsError, [
    "t.safetensors",
    '"nope"',
    '"big"',
  ]);
});

// ===================================================================================================
// The reference fixtures

Deno.test("fixtures: the tiny MambaByte's weights match the listed keys and shapes", async () => {
  const fixture = await tinyFixture();
  const sf = await readSafetensors(TINY_MODEL);
  assert.deepEqual(new Set(sf.tensors.keys()), new Set(Object.keys(fixture.keys)));
  for (const [key, shape] of Object.entries(fixture.keys)) {
    const t = sf.tensors.get(key)!;
    assert.equal(t.dtype, "F32", key);
    assert.deepEqual(t.shape, shape, key);
    assert.ok(t.data instanceof Float32Array && t.data.every(Number.isFinite), key);
  }
  // lm_head is stored and equals the (tied) embedding.
  assert.deepEqual(getFloat32(sf, "lm_head.weight").data, getFloat32(sf, "backbone.embedding.weight").data);
  const header = await readSafetensorsHeader(TINY_MODEL);
  assert.equal(header.tensors.size, sf.tensors.size);
});

Deno.test("fixtures: the fixture config parses and implies exactly the stored state dict", async () => {
  const fixture = await tinyFixture();
  const cfg = parseMambaConfig(fixture.config, "mambabyte-tiny-public.json");
  assert.equal(cfg.d_model, 32);
  assert.equal(cfg.n_layer, 2);
  assert.equal(dInner(cfg), 64);
  assert.equal(dtRank(cfg), 2);
  assert.equal(paddedVocab(cfg), 256);
  assert.equal(cfg.ssm_cfg.d_state, 16);
  assert.equal(cfg.ssm_cfg.conv_bias, true);
  assert.equal(cfg.tie_embeddings, true);
  const expected = expectedStateDictShapes(cfg);
  assert.deepEqual(Object.fromEntries(expected), fixture.keys);
  const header = await readSafetensorsHeader(TINY_MODEL);
  checkStateDict(TINY_MODEL, header.tensors, cfg); // does not throw
  // configToJson round-trips through the parser.
  assert.deepEqual(parseMambaConfig(configToJson(cfg)), cfg);
});

Deno.test("fixtures: scan and expected-output files have the documented shapes", async () => {
  const scan = await readSafetensors(`${FIXTURES}scan-public.safetensors`);
  const want: Record<string, number[]> = {
    u: [2, 8, 33],
    delta: [2, 8, 33],
    z: [2, 8, 33],
    y: [2, 8, 33],
    B: [2, 4, 33],
    C: [2, 4, 33],
    A: [8, 4],
    D: [8],
    delta_bias: [8],
    last_state: [2, 8, 4],
    grad_A: [8, 4],
  };
  for (const [k, shape] of Object.entries(want)) assert.deepEqual(getFloat32(scan, k).shape, shape, k);
  const long = await readSafetensors(`${FIXTURES}scan-public-long.safetensors`);
  assert.deepEqual(getFloat32(long, "u").shape, [1, 4, 300]);
  assert.deepEqual(getFloat32(long, "last_state").shape, [1, 4, 16]);

  const expected = await readSafetensors(TINY_EXPECTED);
  const ids = getInt32(expected, "input_ids");
  assert.deepEqual(ids.shape, [1, 249]);
  assert.ok(ids.data.every((b) => b >= 0 && b < 256));
  assert.deepEqual(getFloat32(expected, "logits").shape, [1, 249, 256]);
  assert.ok(!expected.tensors.has("grad.lm_head.weight"));
  assert.deepEqual(getFloat32(expected, "grad.backbone.embedding.weight").shape, [256, 32]);
});

// ===================================================================================================
// Bad safetensors input: one clear error naming the file and the key

Deno.test("bad safetensors: truncated files", async () => {
  const good = await Deno.readFile(TINY_MODEL);
  await withTempDir(async (dir) => {
    const path = `${dir}/trunc.safetensors`;
    // Cut inside the data section: the header is intact, the last tensors run past the end.
    await Deno.writeFile(path, good.subarray(0, good.length - 1000));
    await expectInputError(() => readSafetensors(path), SafetensorsError, [path, "truncated", 'tensor "']);
    await expectInputError(
      () => parseSafetensors(good.subarray(0, good.length - 1000), "trunc.safetensors"),
      SafetensorsError,
      ["trunc.safetensors", "truncated"],
    );
    // Cut inside the header.
    await Deno.writeFile(path, good.subarray(0, 100));
    await expectInputError(() => readSafetensors(path), SafetensorsError, [
      path,
      "header length",
      "truncated",
    ]);
    // Cut inside the 8-byte length.
    await Deno.writeFile(path, good.subarray(0, 5));
    await expectInputError(() => readSafetensors(path), SafetensorsError, [path, "5 bytes", "truncated"]);
    await Deno.writeFile(path, new Uint8Array(0));
    await expectInputError(() => readSafetensorsHeader(path), SafetensorsError, [path, "0 bytes"]);
  });
});

Deno.test("bad safetensors: corrupt header JSON, header length beyond the file, not an object", async () => {
  const good = await Deno.readFile(TINY_MODEL);
  const corrupt = good.slice();
  corrupt[good.indexOf(":".charCodeAt(0), 8)] = ";".charCodeAt(0);
  await expectInputError(() => parseSafetensors(corrupt, "corrupt.safetensors"), SafetensorsError, [
    "corrupt.safetensors",
    "not valid JSON",
  ]);
  const beyond = good.slice();
  new DataView(beyond.buffer).setBigUint64(0, BigInt(good.length), true);
  await expectInputError(() => parseSafetensors(beyond, "beyond.safetensors"), SafetensorsError, [
    "beyond.safetensors",
    `header length ${good.length}`,
    "past the end",
  ]);
  const notUtf8 = rawSafetensors(null, new Uint8Array(0), '{"a":\xff}');
  notUtf8[8 + 5] = 0xff;
  await expectInputError(() => parseSafetensors(notUtf8, "u.st"), SafetensorsError, ["u.st", "UTF-8"]);
  await expectInputError(
    () => parseSafetensors(rawSafetensors([1, 2], new Uint8Array(0)), "arr.st"),
    SafetensorsError,
    [
      "arr.st",
      "JSON object",
    ],
  );
});

Deno.test("bad safetensors: entries that contradict their shape, dtype or neighbours", async () => {
  const data = new Uint8Array(24);
  const cases: [unknown, string[], Uint8Array?][] = [
    [
      { "a.weight": { dtype: "F32", shape: [2, 3], data_offsets: [0, 12] } },
      ['tensor "a.weight"', "data_offsets [0, 12] hold 12 bytes but shape [2, 3] F32 needs 24"],
    ],
    [{ "a.weight": { dtype: "Q4_K", shape: [6], data_offsets: [0, 24] } }, [
      'tensor "a.weight"',
      'unknown dtype "Q4_K"',
      "F32",
    ]],
    [{ "a.weight": { dtype: "F32", shape: [-6], data_offsets: [0, 24] } }, ['tensor "a.weight"', "shape"]],
    [{ "a.weight": { dtype: "F32", shape: [6], data_offsets: [24, 0] } }, [
      'tensor "a.weight"',
      "data_offsets",
    ]],
    [{ "a.weight": { dtype: "F32", shape: [6] } }, ['tensor "a.weight"', "data_offsets"]],
    [{ "a.weight": { dtype: "F32", shape: [6], data_offsets: [0, 24], extra: 1 } }, [
      'tensor "a.weight"',
      '"extra"',
    ]],
    [
      { "a.weight": { dtype: "F32", shape: [8], data_offsets: [0, 32] } },
      ['tensor "a.weight"', "past the end of the data section (24 bytes)", "truncated"],
    ],
    [
      {
        a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
        b: { dtype: "F32", shape: [3], data_offsets: [4, 16] },
      },
      ['tensor "b"', "overlap", '"a"'],
    ],
    [
      {
        a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
        b: { dtype: "F32", shape: [2], data_offsets: [16, 24] },
      },
      ['tensor "b"', "[8, 16)", "contiguous"],
    ],
    [{ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }, ["16 trailing bytes"]],
    [{ __metadata__: { format: 1 } }, ['"__metadata__"', '"format"', "string"]],
  ];
  for (const [header, parts] of cases) {
    const bytes = rawSafetensors(header, data);
    await expectInputError(() => parseSafetensors(bytes, "tests/x.safetensors"), SafetensorsError, [
      "tests/x.safetensors",
      ...parts,
    ]);
  }
  // Unknown dtype read from disk, too.
  await withTempDir(async (dir) => {
    const path = `${dir}/dtype.safetensors`;
    await Deno.writeFile(
      path,
      rawSafetensors({ w: { dtype: "F8_E4M3", shape: [24], data_offsets: [0, 24] } }, data),
    );
    await expectInputError(() => readSafetensors(path), SafetensorsError, [path, 'tensor "w"', "F8_E4M3"]);
  });
});

Deno.test("bad safetensors: missing file or directory names the path, not a raw NotFound", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/does-not-exist.safetensors`;
    const msg = await expectInputError(() => readSafetensors(path), SafetensorsError, [path, "no such file"]);
    assert.ok(!msg.includes("os error"), msg);
    await expectInputError(() => readSafetensors(dir), SafetensorsError, [dir, "not a regular file"]);
    await expectInputError(() => readSafetensors(TINY_MODEL, { keys: ["nope"] }), SafetensorsError, [
      TINY_MODEL,
      '"nope"',
    ]);
  });
});

// ===================================================================================================
// Writes: validated before anything is created, atomic, nothing left behind

Deno.test("write: invalid tensors fail before any file is created", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/bad.safetensors`;
    const bad: [Record<string, TensorInput>, string[]][] = [
      [{ "a.weight": { dtype: "F32", shape: [2, 3], data: new Float32Array(5) } }, [
        "[2, 3] needs 6 elements",
        "holds 5",
      ]],
      [{ "a.weight": { dtype: "F33" as "F32", shape: [1], data: new Float32Array(1) } }, ["unknown dtype"]],
      [{ "a.weight": { dtype: "I32", shape: [1], data: new Float32Array(1) } }, ["Float32Array", "I32"]],
      [{ "a.weight": { dtype: "U8", shape: [1], data: [300] } }, ["300"]],
      [{ "a.weight": { dtype: "F32", shape: [1.5], data: new Float32Array(1) } }, ["shape"]],
      [{ "a.weight": { dtype: "I64", shape: [1], data: [2 ** 60] } }, ["I64"]],
    ];
    for (const [tensors, parts] of bad) {
      await expectInputError(() => writeSafetensors(path, tensors), SafetensorsError, [
        path,
        '"a.weight"',
        ...parts,
      ]);
      assert.deepEqual(await listDir(dir), [], "nothing written");
    }
    // An existing file keeps its content when a new write fails validation.
    await writeSafetensors(path, { ok: { dtype: "F32", shape: [1], data: new Float32Array([1]) } });
    const before = await Deno.readFile(path);
    await expectInputError(() => writeSafetensors(path, bad[0][0]), SafetensorsError, [path]);
    assert.deepEqual(await Deno.readFile(path), before);
    assert.deepEqual(await listDir(dir), ["bad.safetensors"]);
  });
});

Deno.test("write: a failing rename removes the temporary file and reports the path", async () => {
  await withTempDir(async (dir) => {
    // The destination is a non-empty directory: the temporary file is created, the rename fails.
    const path = `${dir}/occupied`;
    await Deno.mkdir(path);
    await Deno.writeTextFile(`${path}/keep`, "x");
    await expectInputError(
      () => writeSafetensors(path, { a: { dtype: "F32", shape: [1], data: new Float32Array(1) } }),
      FileWriteError,
      [path, "cannot write"],
    );
    assert.deepEqual(await listDir(dir), ["occupied"], "no temporary file left");
    // A missing parent directory is reported (and createParents fixes it).
    const nested = `${dir}/a/b/c.json`;
    await expectInputError(() => atomicWriteFile(nested, "{}"), FileWriteError, [nested]);
    assert.deepEqual(await listDir(dir), ["occupied"]);
    await atomicWriteFile(nested, "{}", { createParents: true });
    assert.equal(await Deno.readTextFile(nested), "{}");
    assert.deepEqual(await listDir(`${dir}/a/b`), ["c.json"]);
  });
});

// ===================================================================================================
// Configs

const HF_130M = {
  architectures: ["MambaForCausalLM"],
  bos_token_id: 0,
  conv_kernel: 4,
  eos_token_id: 0,
  expand: 2,
  fused_add_norm: true,
  hidden_act: "silu",
  hidden_size: 768,
  initializer_range: 0.1,
  intermediate_size: 1536,
  layer_norm_epsilon: 1e-5,
  model_type: "mamba",
  n_layer: 24,
  num_hidden_layers: 24,
  pad_token_id: 0,
  pad_vocab_size_multiple: 8,
  rescale_prenorm_residual: false,
  residual_in_fp32: true,
  rms_norm: true,
  ssm_cfg: {},
  state_size: 16,
  time_step_floor: 0.0001,
  time_step_init_scheme: "random",
  time_step_max: 0.1,
  time_step_min: 0.001,
  time_step_rank: 48,
  time_step_scale: 1.0,
  torch_dtype: "float32",
  transformers_version: "4.39.0.dev0",
  use_bias: false,
  use_cache: true,
  use_conv_bias: true,
  vocab_size: 50280,
};

Deno.test("config: mamba_ssm defaults are filled in", () => {
  const cfg = parseMambaConfig({ d_model: 1792, n_layer: 48, vocab_size: 256 });
  const want: MambaConfig = {
    d_model: 1792,
    d_intermediate: 0,
    n_layer: 48,
    vocab_size: 256,
    ssm_cfg: {
      layer: "Mamba1",
      d_state: 16,
      d_conv: 4,
      expand: 2,
      dt_rank: "auto",
      dt_min: 0.001,
      dt_max: 0.1,
      dt_init: "random",
      dt_scale: 1,
      dt_init_floor: 1e-4,
      conv_bias: true,
      bias: false,
      use_fast_path: true,
    },
    attn_layer_idx: [],
    attn_cfg: {},
    rms_norm: true,
    residual_in_fp32: true,
    fused_add_norm: true,
    pad_vocab_size_multiple: 8,
    tie_embeddings: true,
  };
  assert.deepEqual(cfg, want);
  assert.equal(dtRank(cfg), 112);
  assert.equal(dInner(cfg), 3584);
  assert.equal(paddedVocab(parseMambaConfig({ d_model: 8, n_layer: 1, vocab_size: 50277 })), 50280);
  // Explicit empty/None-like optional fields are accepted.
  parseMambaConfig({
    d_model: 8,
    n_layer: 1,
    vocab_size: 256,
    ssm_cfg: { layer: "Mamba1" },
    attn_layer_idx: [],
    attn_cfg: {},
  });
});

Deno.test("config: Hugging Face transformers form is translated", () => {
  const cfg = parseMambaConfig(HF_130M, "hf/config.json");
  assert.equal(cfg.d_model, 768);
  assert.equal(cfg.n_layer, 24);
  assert.equal(cfg.vocab_size, 50280);
  assert.equal(cfg.pad_vocab_size_multiple, 1, "HF never pads the vocabulary");
  assert.equal(cfg.ssm_cfg.dt_rank, 48);
  assert.equal(cfg.ssm_cfg.d_state, 16);
  assert.equal(dInner(cfg), 1536);
  assert.equal(cfg.tie_embeddings, true);
  // A minimal HF config and one with bias settings.
  const small = parseMambaConfig({
    model_type: "mamba",
    hidden_size: 64,
    num_hidden_layers: 2,
    vocab_size: 256,
    use_bias: true,
    use_conv_bias: false,
    tie_word_embeddings: false,
    time_step_rank: "auto",
  });
  assert.equal(small.ssm_cfg.bias, true);
  assert.equal(small.ssm_cfg.conv_bias, false);
  assert.equal(small.tie_embeddings, false);
  assert.equal(dtRank(small), 4);
  const keys = [...expectedStateDictShapes(small).keys()];
  assert.ok(keys.includes("backbone.layers.0.mixer.in_proj.bias"));
  assert.ok(!keys.includes("backbone.layers.0.mixer.conv1d.bias"));
});

Deno.test("bad config: unknown fields, wrong types, unsupported architectures", async () => {
  const base = { d_model: 32, n_layer: 2, vocab_size: 256 };
  const cases: [unknown, string[]][] = [
    [{ ...base, d_modle: 3 }, ['unknown field "d_modle"', 'did you mean "d_model"', "allowed: d_model"]],
    [{ ...base, ssm_cfg: { d_stat: 16 } }, [
      'unknown field "ssm_cfg.d_stat"',
      '"d_state"',
      "allowed in ssm_cfg",
    ]],
    [{ ...base, ssm_cfg: { layer: "Mamba2", headdim: 64 } }, ['"ssm_cfg.layer"', "Mamba2", "Mamba1"]],
    [{ ...base, d_intermediate: 128 }, ['"d_intermediate"', "MLP"]],
    [{ ...base, attn_layer_idx: [3] }, ['"attn_layer_idx"', "attention"]],
    [{ ...base, d_model: -4 }, ['"d_model"', "positive integer", "-4"]],
    [{ ...base, n_layer: "2" }, ['"n_layer"', "positive integer"]],
    [{ d_model: 32, vocab_size: 256 }, ['"n_layer"', "required"]],
    [{ ...base, ssm_cfg: { dt_rank: "big" } }, ['"ssm_cfg.dt_rank"', '"auto"']],
    [{ ...base, ssm_cfg: { dt_init: "xavier" } }, ['"ssm_cfg.dt_init"', '"random"']],
    [{ ...base, ssm_cfg: { dt_min: 0.5, dt_max: 0.1 } }, ['"ssm_cfg.dt_max"', "dt_min"]],
    [{ ...base, rms_norm: 1 }, ['"rms_norm"', "true or false"]],
    [{ ...base, ssm_cfg: [] }, ['"ssm_cfg"', "object"]],
    [[1, 2], ["JSON object"]],
    [{ model_type: "mamba2", hidden_size: 64 }, ['"model_type"', "mamba2"]],
    [{ ...HF_130M, state_size: -1 }, ['"state_size"', "positive integer"]],
    [{ ...HF_130M, foo_bar: 1 }, ['unknown field "foo_bar"']],
    [{ ...HF_130M, d_model: 1024 }, ['"d_model"', "1024", '"hidden_size"', "768"]],
    [{ ...HF_130M, intermediate_size: 1000 }, ['"intermediate_size"', "1536"]],
    [{ ...HF_130M, hidden_act: "gelu" }, ['"hidden_act"', "silu"]],
    [{ model_type: "mamba", num_hidden_layers: 2, vocab_size: 256 }, ['"hidden_size"', "required"]],
  ];
  for (const [json, parts] of cases) {
    await expectInputError(() => parseMambaConfig(json, "ckpt/config.json"), ConfigError, [
      "ckpt/config.json",
      ...parts,
    ]);
  }
  // HF bookkeeping keys are NOT accepted in the mamba_ssm form.
  await expectInputError(() => parseMambaConfig({ ...base, torch_dtype: "float32" }, "c.json"), ConfigError, [
    'unknown field "torch_dtype"',
  ]);
});

Deno.test("bad config: files that are missing or not JSON", async () => {
  await withTempDir(async (dir) => {
    const missing = `${dir}/config.json`;
    const msg = await expectInputError(() => readMambaConfig(missing), ConfigError, [
      missing,
      "no such file",
    ]);
    assert.ok(!msg.includes("os error"), msg);
    await Deno.writeTextFile(missing, '{\n  "d_model": 32,\n  "n_layer": 2,,\n}');
    await expectInputError(() => readMambaConfig(missing), ConfigError, [missing, "invalid JSON", "line 3"]);
    await Deno.writeTextFile(missing, JSON.stringify({ d_model: 32, n_layer: 2, vocab_size: 256, typo: 1 }));
    await expectInputError(() => readMambaConfig(missing), ConfigError, [missing, '"typo"']);
  });
});

// ===================================================================================================
// State dicts

Deno.test("state dict: missing, unexpected and mis-shaped keys give one clear error", async () => {
  const fixture = await tinyFixture();
  const cfg = parseMambaConfig(fixture.config);
  const shapes = () => new Map(Object.entries(fixture.keys).map(([k, s]) => [k, { shape: s, dtype: "F32" }]));
  const file = "ckpt/model.safetensors";

  const misShaped = shapes();
  misShaped.set("backbone.layers.1.mixer.A_log", { shape: [64, 8], dtype: "F32" });
  await expectInputError(() => checkStateDict(file, misShaped, cfg, "ckpt/config.json"), StateDictError, [
    file,
    '"backbone.layers.1.mixer.A_log"',
    "[64, 8]",
    "[64, 16]",
    "d_inner, d_state",
    "ckpt/config.json",
  ]);

  const missing = shapes();
  missing.delete("backbone.layers.0.mixer.D");
  await expectInputError(() => checkStateDict(file, missing, cfg), StateDictError, [
    file,
    'missing tensor "backbone.layers.0.mixer.D"',
    "[64]",
  ]);

  const extra = shapes();
  extra.set("backbone.layers.2.norm.weight", { shape: [32], dtype: "F32" });
  await expectInputError(() => checkStateDict(file, extra, cfg), StateDictError, [
    file,
    'unexpected tensor "backbone.layers.2.norm.weight"',
  ]);

  const ints = shapes();
  ints.set("backbone.norm_f.weight", { shape: [32], dtype: "I32" });
  await expectInputError(() => checkStateDict(file, ints, cfg), StateDictError, [
    file,
    '"backbone.norm_f.weight"',
    "I32",
  ]);

  // A config with the wrong n_layer: one error, the first problem named, the rest counted.
  const wrong = parseMambaConfig({ ...fixture.config, n_layer: 3 });
  const msg = await expectInputError(() => checkStateDict(file, shapes(), wrong), StateDictError, [
    file,
    '"backbone.layers.2.norm.weight"',
    "more problems",
  ]);
  assert.ok(msg.length < 1000, msg);

  // The tied head may be absent; an untied one may not.
  const noHead = shapes();
  noHead.delete("lm_head.weight");
  checkStateDict(file, noHead, cfg);
  const untied = parseMambaConfig({ ...fixture.config, tie_embeddings: false });
  await expectInputError(() => checkStateDict(file, noHead, untied), StateDictError, [
    '"lm_head.weight"',
    "tie_embeddings is false",
  ]);

  // Hugging Face names are accepted (and both spellings at once are not).
  const hf = shapes();
  hf.set("backbone.embeddings.weight", hf.get("backbone.embedding.weight")!);
  await expectInputError(() => checkStateDict(file, hf, cfg), StateDictError, [
    file,
    '"backbone.embeddings.weight"',
  ]);
  hf.delete("backbone.embedding.weight");
  checkStateDict(file, hf, cfg);
});

// ===================================================================================================
// Checkpoint directories

Deno.test("checkpoint: write then read a directory (config.json + model.safetensors)", async () => {
  const fixture = await tinyFixture();
  const cfg = parseMambaConfig(fixture.config);
  const sf = await readSafetensors(TINY_MODEL);
  await withTempDir(async (dir) => {
    const ckpt = `${dir}/run/step-10`;
    await writeCheckpoint(ckpt, cfg, sf.tensors);
    assert.deepEqual(await listDir(ckpt), ["config.json", "model.safetensors"]);
    const back = await readCheckpoint(ckpt);
    assert.deepEqual(back.config, cfg);
    assert.deepEqual(back.metadata, { format: "pt" });
    assert.deepEqual([...back.tensors.keys()].sort(), [...sf.tensors.keys()].sort());
    for (const [k, t] of sf.tensors) assert.deepEqual(bytesOf(back.tensors.get(k)!.data), bytesOf(t.data), k);

    // Hugging Face key names are mapped to mamba_ssm's on read.
    const hfDir = `${dir}/hf`;
    const renamed = new Map(
      [...sf.tensors].map((
        [k, t],
      ) => [k === "backbone.embedding.weight" ? "backbone.embeddings.weight" : k, t]),
    );
    await writeCheckpoint(hfDir, cfg, renamed);
    const hf = await readCheckpoint(hfDir);
    assert.ok(hf.tensors.has("backbone.embedding.weight"));
    assert.ok(!hf.tensors.has("backbone.embeddings.weight"));
  });
});

Deno.test("checkpoint: bad directories fail with one clear error and write nothing", async () => {
  const fixture = await tinyFixture();
  const cfg = parseMambaConfig(fixture.config);
  const sf = await readSafetensors(TINY_MODEL);
  await withTempDir(async (dir) => {
    // Mis-shaped tensor: validated before the directory is even created.
    const bad = new Map(sf.tensors);
    bad.set("backbone.norm_f.weight", { dtype: "F32", shape: [31], data: new Float32Array(31) });
    const target = `${dir}/never`;
    await expectInputError(() => writeCheckpoint(target, cfg, bad), StateDictError, [
      `${target}/model.safetensors`,
      '"backbone.norm_f.weight"',
      "[31]",
      "[32]",
    ]);
    assert.deepEqual(await listDir(dir), []);

    await expectInputError(() => readCheckpoint(`${dir}/nope`), InputError, [`${dir}/nope`, "no such file"]);
    const empty = `${dir}/empty`;
    await Deno.mkdir(empty);
    await expectInputError(() => readCheckpoint(empty), ConfigError, [`${empty}/config.json`]);
    await Deno.writeTextFile(`${empty}/config.json`, JSON.stringify(configToJson(cfg)));
    await expectInputError(() => readCheckpoint(empty), InputError, [empty, "model.safetensors"]);
    await Deno.writeFile(`${empty}/pytorch_model.bin`, new Uint8Array(4));
    await expectInputError(() => readCheckpoint(empty), InputError, [
      empty,
      "pytorch_model.bin",
      "save_file",
    ]);

    // Weights that do not match config.json: caught from the header, naming both files.
    const mismatch = `${dir}/mismatch`;
    await writeCheckpoint(mismatch, cfg, sf.tensors);
    await Deno.writeTextFile(
      `${mismatch}/config.json`,
      JSON.stringify({ ...configToJson(cfg), d_model: 48 }),
    );
    await expectInputError(() => readCheckpoint(mismatch), StateDictError, [
      `${mismatch}/model.safetensors`,
      `${mismatch}/config.json`,
      '"backbone.embedding.weight"',
      "[256, 32]",
      "[256, 48]",
    ]);
  });
});
