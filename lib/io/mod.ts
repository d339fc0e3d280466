/** lib/io: file formats only (safetensors, JSON, atomic writes, errors that name the file). No tfjs here. */
export * from "./errors.ts";
export * from "./atomic.ts";
export * from "./half.ts";
export * from "./json.ts";
export * from "./safetensors.ts";
