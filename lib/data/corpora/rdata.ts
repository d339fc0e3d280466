/**
 * Reads character vectors out of an R package's lazy-load data base (data/Rdata.rdx + Rdata.rdb) without R.
 *
 * janeaustenr stores each novel as a character vector (one element per line). R's lazy-load format:
 * the .rdx is a serialized (gzip-compressed) list(variables = list(name = c(offset, length)), ...), and
 * the .rdb holds, at each offset, a 4-byte big-endian uncompressed length followed by a zlib stream of
 * the variable serialized in R's XDR format (version 2 or 3). We implement the subset of the format that
 * data sets use: vectors, strings, pairlists (attributes), symbols, references and ALTREP wrappers.
 */
import { gunzipBytes, inflateBytes } from "./archive.ts";

/** What a serialized R value turns into here. */
export type RValue =
  | null
  | string
  | { type: "character"; values: (string | null)[]; attributes?: RPairs }
  | { type: "list"; values: RValue[]; attributes?: RPairs }
  | { type: "numeric"; values: number[]; attributes?: RPairs }
  | { type: "symbol"; name: string }
  | { type: "pairlist"; entries: RPairs }
  | { type: "other"; sexptype: number };

export type RPairs = { tag: string | null; value: RValue }[];

const NILVALUE = 254, REFSXP = 255, ALTREP = 238;
const SPECIAL_ENVS = new Set([253, 252, 251, 250, 242, 241]); // global/unbound/missing/base/empty/baseenv

class XdrReader {
  private view: DataView;
  at = 0;
  refs: RValue[] = [];
  constructor(private bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  int(): number {
    const v = this.view.getInt32(this.at, false);
    this.at += 4;
    return v;
  }
  double(): number {
    const v = this.view.getFloat64(this.at, false);
    this.at += 8;
    return v;
  }
  raw(n: number): Uint8Array {
    const v = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return v;
  }
  length(): number {
    const n = this.int();
    if (n !== -1) return n;
    const hi = this.int(), lo = this.int();
    return hi * 2 ** 32 + (lo >>> 0);
  }
}

const LATIN1_MASK = 1 << 2;

function readItem(r: XdrReader): RValue {
  const flags = r.int();
  const type = flags & 0xff;
  const hasAttr = (flags & (1 << 9)) !== 0;
  const levels = flags >> 12;
  if (type === NILVALUE || SPECIAL_ENVS.has(type)) return null;
  if (type === REFSXP) {
    let idx = flags >> 8;
    if (idx === 0) idx = r.int();
    return r.refs[idx - 1] ?? null;
  }
  switch (type) {
    case 1: { // SYMSXP: its name follows as a CHARSXP; symbols enter the reference table
      const name = readItem(r) as string;
      const sym: RValue = { type: "symbol", name };
      r.refs.push(sym);
      return sym;
    }
    case 2:
    case 6:
    case 17:
    case 239:
    case 240: { // LISTSXP, LANGSXP, DOTSXP, ATTRLISTSXP, ATTRLANGSXP
      const entries: RPairs = [];
      let f = flags;
      // R writes a pairlist as a chain of cells (flags, attributes?, tag?, CAR), the CDR being the next
      // cell; NILVALUE ends the chain. Walk it iteratively so long lists do not recurse.
      while (true) {
        if (f & (1 << 9)) readItem(r);
        let tag: string | null = null;
        if (f & (1 << 10)) {
          const t = readItem(r);
          tag = t && typeof t === "object" && t.type === "symbol" ? t.name : null;
        }
        entries.push({ tag, value: readItem(r) });
        const next = r.int();
        const nt = next & 0xff;
        if (nt === NILVALUE) break;
        if (nt === type) {
          f = next;
          continue;
        }
        r.at -= 4; // a dotted pair: the CDR is an ordinary item
        readItem(r);
        break;
      }
      return { type: "pairlist", entries };
    }
    case 9: { // CHARSXP
      const n = r.int();
      if (n === -1) return null; // NA_character_
      const bytes = r.raw(n);
      return new TextDecoder(levels & LATIN1_MASK ? "latin1" : "utf-8").decode(bytes);
    }
    case 10:
    case 13: { // LGLSXP, INTSXP
      const n = r.length();
      const values = new Array<number>(n);
      for (let i = 0; i < n; i++) values[i] = r.int();
      return withAttrs(r, hasAttr, { type: "numeric", values });
    }
    case 14: { // REALSXP
      const n = r.length();
      const values = new Array<number>(n);
      for (let i = 0; i < n; i++) values[i] = r.double();
      return withAttrs(r, hasAttr, { type: "numeric", values });
    }
    case 16: { // STRSXP
      const n = r.length();
      const values = new Array<string | null>(n);
      for (let i = 0; i < n; i++) values[i] = readItem(r) as string | null;
      return withAttrs(r, hasAttr, { type: "character", values });
    }
    case 19:
    case 20: { // VECSXP, EXPRSXP
      const n = r.length();
      const values = new Array<RValue>(n);
      for (let i = 0; i < n; i++) values[i] = readItem(r);
      return withAttrs(r, hasAttr, { type: "list", values });
    }
    case ALTREP: { // class info, state, attributes; compact sequences (row names) are all we meet
      readItem(r);
      const state = readItem(r);
      readItem(r);
      return state;
    }
    default:
      throw new Error(`R serialization: SEXP type ${type} is not supported by this reader`);
  }
}

type RVector = Extract<RValue, { values: unknown[] }>;

function withAttrs(r: XdrReader, hasAttr: boolean, v: RVector): RVector {
  if (hasAttr) {
    const a = readItem(r);
    if (a && typeof a === "object" && a.type === "pairlist") v.attributes = a.entries;
  }
  return v;
}

/** Deserializes one R object in XDR format ("X\n" header). */
export function unserialize(bytes: Uint8Array): RValue {
  if (bytes[0] !== 0x58 || bytes[1] !== 0x0a) {
    throw new Error(
      `not an XDR R serialization (starts with ${JSON.stringify(String.fromCharCode(bytes[0], bytes[1]))})`,
    );
  }
  const r = new XdrReader(bytes);
  r.at = 2;
  const version = r.int();
  r.int(); // writer's R version
  r.int(); // minimal reader version
  if (version === 3) {
    const n = r.int();
    r.raw(n); // native encoding name
  } else if (version !== 2) throw new Error(`R serialization version ${version} is not supported`);
  return readItem(r);
}

function namedList(v: RValue): Map<string, RValue> {
  if (!v || typeof v !== "object" || v.type !== "list") throw new Error("expected a named list");
  const names = v.attributes?.find((a) => a.tag === "names")?.value;
  if (!names || typeof names !== "object" || names.type !== "character") {
    throw new Error("list without names");
  }
  return new Map(v.values.map((x, i) => [names.values[i] ?? `#${i}`, x]));
}

/**
 * The character vectors of an R lazy-load data base (given the .rdx and .rdb bytes), by variable name.
 * Variables that are not character vectors are left out.
 */
export function readRdataCharacterVectors(rdx: Uint8Array, rdb: Uint8Array): Map<string, string[]> {
  // The .rdx is a gzip-compressed serialization (saveRDS); older packages store it zlib-compressed with a
  // 4-byte length prefix like the .rdb entries.
  const index = rdx[0] === 0x1f && rdx[1] === 0x8b ? gunzipBytes(rdx) : inflateBytes(rdx.subarray(4));
  const vars = namedList(namedList(unserialize(index)).get("variables") ?? null);
  const out = new Map<string, string[]>();
  for (const [name, pos] of vars) {
    if (!pos || typeof pos !== "object" || pos.type !== "numeric") continue;
    const [offset, length] = pos.values;
    const entry = rdb.subarray(offset, offset + length);
    // 4-byte big-endian uncompressed length, then a zlib stream (type 'Z' / '2' / 'X' prefixes mark
    // bzip2/xz in newer R, which this package does not use).
    const value = unserialize(inflateBytes(entry.subarray(4)));
    if (value && typeof value === "object" && value.type === "character") {
      out.set(name, value.values.map((s) => s ?? ""));
    }
  }
  return out;
}
