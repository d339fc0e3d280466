/**
 * Float64 scratch arrays for the twins, by name: grown when a call needs more and never shrunk, so a
 * program replayed every step allocates nothing once warm. A twin never holds one across calls.
 */
const arrays = new Map<string, Float64Array>();

/** A float64 array of `size` values, contents undefined (callers set what they read). */
export function scratch(name: string, size: number): Float64Array {
  let a = arrays.get(name);
  if (!a || a.length < size) arrays.set(name, a = new Float64Array(Math.max(size, 1)));
  return a.subarray(0, size);
}
