/**
 * Small helpers the engine's WGSL generators share: binding declarations, flat indexing over a 2-d grid
 * of workgroups, a workgroup tree reduction, and a cache so each source is built once per argument set.
 * Pure: no device.
 */

export type Access = "read" | "read_write";
/** A storage binding: name, access, element type. Every declared binding must be used by the shader. */
export type Binding = [string, Access, "f32" | "i32" | "vec4<f32>"];

/** `@group(0) @binding(i) var<storage, access> name: array<type>;` for each binding, in order. */
export function declare(bindings: Binding[]): string {
  return bindings.map(([name, access, type], i) =>
    `@group(0) @binding(${i}) var<storage, ${access}> ${name}: array<${type}>;`
  ).join("\n");
}

/** The flat index of a thread of a (x, y) grid of `size`-thread workgroups (see flatGroups). */
export function flatIndex(size: number): string {
  return `gid.x + gid.y * nwg.x * ${size}u`;
}

/** The builtins a flat-indexed kernel's `main` takes. */
export const FLAT_ARGS =
  "@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>";

/** The builtins of a kernel with one workgroup per item (item = wg.x + wg.y nwg.x). */
export const GROUP_ARGS =
  "@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>";

/**
 * WGSL reducing `arr[0 .. size)` (workgroup memory, one value per thread already stored, then a barrier)
 * into arr[0] with `op` ("+" or "max"); ends with a barrier, so every thread may read arr[0].
 */
export function treeReduce(arr: string, size: number, op: "+" | "max"): string {
  const steps: string[] = [];
  for (let s = size / 2; s >= 1; s /= 2) {
    const combine = op === "+"
      ? `${arr}[lid] + ${arr}[lid + ${s}u]`
      : `max(${arr}[lid], ${arr}[lid + ${s}u])`;
    steps.push(`if (lid < ${s}u) { ${arr}[lid] = ${combine}; }\n  workgroupBarrier();`);
  }
  return steps.join("\n  ");
}

/** Workgroups for one workgroup per item of `count` items (2-d past 65535). */
export function itemGroups(count: number): [number, number, number] {
  const n = Math.max(1, count);
  return [Math.min(n, 65535), Math.ceil(n / 65535), 1];
}

const cache = new Map<string, string>();
/** `make()` once per key. */
export function cached(key: string, make: () => string): string {
  let text = cache.get(key);
  if (text === undefined) cache.set(key, text = make());
  return text;
}

/** WGSL: whether the float x is finite (exponent bits not all ones; robust to fast-math folding). */
export const IS_FINITE =
  "fn isFinite(x: f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u; }";

export const SIGMOID = "fn sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }";

/** The index a thread holds when it saw no candidate (argmaxReduce). */
export const NO_INDEX = "0xffffffffu";

/**
 * WGSL reducing each thread's candidate (value `v`, index `at`, NO_INDEX for none) over a workgroup of
 * `size` threads, in workgroup arrays bestV / bestI that the shader declares, to the largest value, ties to
 * the smaller index (the first maximum, as the JS twins pick it); bestV[0], bestI[0] hold it after.
 */
export function argmaxReduce(size: number): string {
  return `bestV[lid] = v; bestI[lid] = at;
  workgroupBarrier();
  for (var s = ${size / 2}u; s >= 1u; s = s / 2u) {
    if (lid < s) {
      let ov = bestV[lid + s]; let oi = bestI[lid + s];
      if (oi != ${NO_INDEX} && (bestI[lid] == ${NO_INDEX} || ov > bestV[lid] || (ov == bestV[lid] && oi < bestI[lid]))) {
        bestV[lid] = ov; bestI[lid] = oi;
      }
    }
    workgroupBarrier();
  }`;
}
