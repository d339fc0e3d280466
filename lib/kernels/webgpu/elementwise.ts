/** WGSL of small maps over float ranges (plain-JS twins: ../js/elementwise.ts). */
import type { CopyParams, FillParams, RangeParams } from "../js/elementwise.ts";
import { type Dispatcher, flatGroups } from "./dispatcher.ts";
import { cached, declare, FLAT_ARGS, flatIndex } from "./wgsl.ts";

function map(name: string, count: number, x: "read" | "read_write", y: "read" | "read_write", body: string) {
  return cached(`${name} ${count}`, () =>
    `${declare([["x", x, "f32"], ["y", y, "f32"]])}
@compute @workgroup_size(256) fn main(${FLAT_ARGS}) {
  let i = ${flatIndex(256)};
  if (i >= ${count}u) { return; }
  ${body}
}`);
}

export const negExpShader = (p: RangeParams) =>
  map("negExp", p.count, "read", "read_write", "y[i] = -exp(x[i]);");

/** y = -exp(x) */
export function negExp<B>(d: Dispatcher<B>, p: RangeParams, b: { x: B; y: B }): void {
  d.dispatch("negExp", negExpShader(p), [b.x, b.y], flatGroups(p.count, 256));
}

export const mulInPlaceShader = (p: RangeParams) =>
  map("mulInPlace", p.count, "read_write", "read", "x[i] = x[i] * y[i];");

/** x *= y */
export function mulInPlace<B>(d: Dispatcher<B>, p: RangeParams, b: { x: B; y: B }): void {
  d.dispatch("mulInPlace", mulInPlaceShader(p), [b.x, b.y], flatGroups(p.count, 256));
}

export function copyShader(p: CopyParams): string {
  return cached(
    `copy ${JSON.stringify(p)}`,
    () =>
      `${declare([["src", "read", "f32"], ["dst", "read_write", "f32"]])}
@compute @workgroup_size(256) fn main(${FLAT_ARGS}) {
  let i = ${flatIndex(256)};
  if (i >= ${p.count}u) { return; }
  dst[${p.dstOffset}u + i] = ${p.accumulate ? `dst[${p.dstOffset}u + i] + ` : ""}src[${p.srcOffset}u + i];
}`,
  );
}

/** dst[dstOffset + i] (+)= src[srcOffset + i] */
export function copy<B>(d: Dispatcher<B>, p: CopyParams, b: { src: B; dst: B }): void {
  d.dispatch("copy", copyShader(p), [b.src, b.dst], flatGroups(p.count, 256));
}

/** x[i] = value for i < count */
export function fill<B>(d: Dispatcher<B>, p: FillParams, b: { x: B }): void {
  const code = cached(`fill ${JSON.stringify(p)}`, () =>
    `${declare([["x", "read_write", "f32"]])}
@compute @workgroup_size(256) fn main(${FLAT_ARGS}) {
  let i = ${flatIndex(256)};
  if (i >= ${p.count}u) { return; }
  x[i] = ${Number.isInteger(p.value) ? `${p.value}.0` : p.value};
}`);
  d.dispatch("fill", code, [b.x], flatGroups(p.count, 256));
}
