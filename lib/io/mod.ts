/** lib/io: files in and out (safetensors, model configs, checkpoints, atomic writes). No tfjs here. */
export * from "./errors.ts";
export * from "./atomic.ts";
export * from "./half.ts";
export * from "./safetensors.ts";
export * from "./config.ts";
export * from "./checkpoint.ts";
