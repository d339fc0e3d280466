/**
 * Shared by the engine's tests: which engine backends to test, following tests/helpers.ts's conventions
 * (MAMBABYTE_TEST_BACKENDS): "js" (the kernels' plain-JS twins) runs wherever a CPU TF.js backend is
 * tested (cpu or wasm), "wasm" (the WebAssembly kernels, the CPU engine) where TF.js's wasm backend is,
 * "webgpu" where webgpu is (Mesa's software adapter in CI, allowed explicitly). "js" may also be named
 * directly, and the wasm engine as "wasm-engine".
 */
import { TEST_BACKENDS } from "./helpers.ts";
import type { EngineBackendName } from "../lib/engine/backend.ts";

const named = (Deno.env.get("MAMBABYTE_TEST_BACKENDS") ?? "").split(",");

export const ENGINE_BACKENDS: EngineBackendName[] = [
  ...(TEST_BACKENDS.some((b) => b === "cpu" || b === "wasm") || named.includes("js") ? ["js" as const] : []),
  ...(TEST_BACKENDS.includes("wasm") || named.includes("wasm-engine") ? ["wasm" as const] : []),
  ...(TEST_BACKENDS.includes("webgpu") ? ["webgpu" as const] : []),
];

/** The TF.js backend the engine is compared with: a CPU one when tested, else webgpu. */
export const TFJS_REFERENCE_BACKEND = TEST_BACKENDS.find((b) => b === "cpu" || b === "wasm") ??
  TEST_BACKENDS[0] ?? "cpu";
