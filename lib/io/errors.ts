/**
 * Errors about files the user handed us (checkpoints, configs, results).
 *
 * An `InputError` carries a complete, human-readable message that already names the file and, where there
 * is one, the key or field at fault. Callers such as the CLI can print `err.message` alone (no stack trace)
 * and exit: the message is the whole diagnosis.
 */
export class InputError extends Error {
  /** The path (or label, e.g. "<buffer>") of the file the problem is in. */
  readonly file: string;
  /** The tensor key or config field at fault, when the problem is local to one. */
  readonly key?: string;

  constructor(file: string, key: string | undefined, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "InputError";
    this.file = file;
    this.key = key;
  }
}

/** A safetensors file that cannot be read, or tensors that cannot be written as one. */
export class SafetensorsError extends InputError {
  constructor(file: string, key: string | undefined, message: string, options?: ErrorOptions) {
    super(file, key, message, options);
    this.name = "SafetensorsError";
  }
}

/** A model config (mamba_ssm or Hugging Face config.json) that is malformed or unsupported. */
export class ConfigError extends InputError {
  constructor(file: string, key: string | undefined, message: string, options?: ErrorOptions) {
    super(file, key, message, options);
    this.name = "ConfigError";
  }
}

/** A state dict whose keys or shapes do not match what the config implies. */
export class StateDictError extends InputError {
  constructor(file: string, key: string | undefined, message: string, options?: ErrorOptions) {
    super(file, key, message, options);
    this.name = "StateDictError";
  }
}

/**
 * A tensor of a checkpoint holding NaN or an infinity: nothing computed from it can be trusted (a score
 * would be NaN, sampling would pick arbitrary bytes), so loading fails and names the tensor.
 */
export class NonFiniteWeightsError extends InputError {
  constructor(file: string, key: string, message: string) {
    super(file, key, message);
    this.name = "NonFiniteWeightsError";
  }
}

/**
 * A result that came out NaN or infinite (a loss, a score, the logits of a step) where a finite number is
 * required; the message says what and where. Raised instead of recording or printing the number.
 */
export class NonFiniteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NonFiniteError";
  }
}

/**
 * Index of the first value of `values` that is NaN or infinite, and how many such values there are; one
 * pass, no allocation (x - x is 0 for every finite x and NaN otherwise).
 */
export function findNonFinite(values: ArrayLike<number>): { first: number; count: number } | undefined {
  let first = -1, count = 0;
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    if (x - x !== 0) {
      if (first < 0) first = i;
      count++;
    }
  }
  return first < 0 ? undefined : { first, count };
}

/** A file that could not be written (the destination is left untouched). */
export class FileWriteError extends InputError {
  constructor(file: string, message: string, options?: ErrorOptions) {
    super(file, undefined, message, options);
    this.name = "FileWriteError";
  }
}

/**
 * Turns a Deno file-system error into a short phrase ("no such file", "permission denied", ...), so that
 * messages read `x.safetensors: no such file` instead of a raw `NotFound: ... (os error 2)` stack.
 */
export function describeFsError(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "no such file or directory";
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (err instanceof Deno.errors.IsADirectory) return "is a directory, not a file";
  if (err instanceof Deno.errors.NotADirectory) return "a component of the path is not a directory";
  if (err instanceof Deno.errors.AlreadyExists) return "already exists";
  if (err instanceof Error) return err.message;
  return String(err);
}
