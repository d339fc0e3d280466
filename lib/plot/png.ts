/**
 * PNG bytes made smaller without changing a pixel: the image data (the IDAT chunks, concatenated) inflated
 * and deflated again at zlib's strongest setting, every other chunk kept as it is, the scanlines' filter
 * bytes untouched. Chromium's canvas encoder (Plotly.toImage) favours speed: measured on the committed
 * figures, 4.45 MB of image data became 3.38 MB (-24%). Every device call carries the tracked tree beside
 * the GPU bundle and a corpus inside 64 MiB, so the figures' bytes count there.
 *
 * Layout (PNG specification, section 5): an 8-byte signature, then chunks of a 4-byte big-endian length, a
 * 4-byte type, the data, and a CRC-32 over type and data.
 */
import { crc32, deflateSync, inflateSync } from "node:zlib";

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

interface Chunk {
  type: string;
  data: Uint8Array;
}

/** The chunks of a PNG, in order; a malformed file is one error naming what is wrong. */
export function readPngChunks(png: Uint8Array): Chunk[] {
  if (png.length < 8 || SIGNATURE.some((b, i) => png[i] !== b)) {
    throw new Error("not a PNG (no PNG signature)");
  }
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const chunks: Chunk[] = [];
  for (let pos = 8; pos < png.length;) {
    if (pos + 12 > png.length) throw new Error(`PNG: a chunk header at byte ${pos} runs past the end`);
    const length = view.getUint32(pos);
    const type = String.fromCharCode(...png.subarray(pos + 4, pos + 8));
    if (pos + 12 + length > png.length) throw new Error(`PNG: chunk ${type} runs past the end`);
    chunks.push({ type, data: png.subarray(pos + 8, pos + 8 + length) });
    pos += 12 + length;
    if (type === "IEND") break;
  }
  if (chunks.at(-1)?.type !== "IEND") throw new Error("PNG: no IEND chunk");
  return chunks;
}

/** A PNG written from chunks (each chunk's CRC computed). */
export function writePng(chunks: Chunk[]): Uint8Array {
  const out = new Uint8Array(8 + chunks.reduce((n, c) => n + 12 + c.data.length, 0));
  const view = new DataView(out.buffer);
  out.set(SIGNATURE);
  let pos = 8;
  for (const { type, data } of chunks) {
    view.setUint32(pos, data.length);
    const typed = out.subarray(pos + 4, pos + 8 + data.length);
    typed.set(new TextEncoder().encode(type));
    typed.set(data, 4);
    view.setUint32(pos + 8 + data.length, crc32(typed) >>> 0);
    pos += 12 + data.length;
  }
  return out;
}

/** The PNG with its image data deflated again at level 9 (the same pixels; the smaller of the two). */
export function recompressPng(png: Uint8Array): Uint8Array {
  const chunks = readPngChunks(png);
  const idat = chunks.filter((c) => c.type === "IDAT");
  if (!idat.length) throw new Error("PNG: no IDAT chunk");
  const joined = new Uint8Array(idat.reduce((n, c) => n + c.data.length, 0));
  idat.reduce((o, c) => (joined.set(c.data, o), o + c.data.length), 0);
  const packed = new Uint8Array(deflateSync(inflateSync(joined), { level: 9, memLevel: 9 }));
  if (packed.length >= joined.length) return png;
  // one IDAT where the first was (the specification requires consecutive IDATs; one is the simplest case)
  const first = chunks.indexOf(idat[0]);
  const rest = chunks.filter((c) => c.type !== "IDAT");
  rest.splice(first, 0, { type: "IDAT", data: packed });
  return writePng(rest);
}
