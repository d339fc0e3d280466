/** JSON text with errors that name the file and the line and column of a syntax error. */
import { ConfigError } from "./errors.ts";

/** JSON.parse with errors that name the file and give line and column. */
export function parseJsonText(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    let msg = (err as Error).message;
    const m = /at position (\d+)/.exec(msg);
    if (m && !/line \d+/.test(msg)) {
      const pos = Number(m[1]);
      const before = text.slice(0, pos);
      const line = before.split("\n").length;
      const column = pos - before.lastIndexOf("\n");
      msg += ` (line ${line} column ${column})`;
    }
    throw new ConfigError(source, undefined, `${source}: invalid JSON: ${msg}`, { cause: err });
  }
}
