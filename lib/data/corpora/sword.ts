/**
 * Reads a SWORD "zText" Bible module (Debian's sword-text-* packages) without libsword.
 *
 * A zText testament is three files: NAME.bzs, a table of 12-byte little-endian records (offset, compressed
 * size, uncompressed size) of compressed blocks; NAME.bzz, the zlib blocks themselves; NAME.bzv, the
 * verse index (which we do not need: with BlockType=BOOK each block is one book, its verses stored in
 * order). The text is OSIS XML fragments, turned into plain text by `osisToText`.
 */
import { inflateBytes } from "./archive.ts";
import { decodeEntities } from "./clean.ts";

/** The decompressed blocks of one testament ("ot" or "nt"), in order. */
export function readZTextBlocks(bzs: Uint8Array, bzz: Uint8Array): Uint8Array[] {
  if (bzs.length % 12 !== 0) {
    throw new Error(`SWORD block index has ${bzs.length} bytes, not a multiple of 12`);
  }
  const view = new DataView(bzs.buffer, bzs.byteOffset, bzs.byteLength);
  const blocks: Uint8Array[] = [];
  for (let i = 0; i < bzs.length / 12; i++) {
    const offset = view.getUint32(i * 12, true);
    const size = view.getUint32(i * 12 + 4, true);
    if (size === 0) continue;
    blocks.push(inflateBytes(bzz.subarray(offset, offset + size)));
  }
  return blocks;
}

/**
 * OSIS to plain text: footnotes and cross-references (<note>, with their variant readings) are removed
 * with their content; paragraph ends, poetry lines, titles and chapter starts become line breaks;
 * every other tag (<w> word tags with Strong's numbers, milestones, <transChange>, ...) is dropped and its
 * text kept. Runs of spaces collapse; at most one blank line separates paragraphs.
 */
export function osisToText(osis: string): string {
  // A note often sits where the space between two words would be ("God<note>…</note><w>created"):
  // mark its place (with a private-use character) and put a space back where letters meet.
  let s = osis.replace(/<note\b[^>]*\/>/g, "\ue000").replace(/<note\b[^>]*>[\s\S]*?<\/note>/g, "\ue000");
  s = s.replace(/<chapter\b[^>]*sID[^>]*\/>/g, "\n\n");
  s = s.replace(/<title\b[^>]*>/g, "\n\n").replace(/<\/title>/g, "\n\n");
  s = s.replace(/<div\b[^>]*eID[^>]*\/>/g, "\n\n"); // end of a paragraph / section
  s = s.replace(/<(lb|l)\b[^>]*\/>/g, "\n").replace(/<\/l>/g, "\n");
  s = s.replace(/<[^>]+>/g, "");
  s = s.replace(/(?<=[\p{L}\p{N},.;:!?’”])\ue000+(?=[\p{L}\p{N}“‘])/gu, " ").replace(/\ue000/g, "");
  s = decodeEntities(s);
  s = s.replace(/[ \t]+/g, " ").replace(/ *\n */g, "\n").replace(/\n{3,}/g, "\n\n");
  return s.trim() + "\n";
}
