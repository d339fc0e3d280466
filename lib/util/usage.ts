/**
 * `--help` for the scripts whose options are read by hand (benchmarks, figures, evaluation stages): the
 * usage text is the list of options, so an option the text does not name is refused, and the help can
 * never leave one out.
 */

/** The `--name` options a usage text names (words starting with two dashes). */
export function usageOptions(usage: string): Set<string> {
  return new Set(usage.match(/--[a-z][a-z0-9-]*/g) ?? []);
}

/**
 * Prints `usage` on stdout and exits 0 when `args` hold `--help` or `-h`; exits 2 with one line on stderr
 * when an argument is an option (`--name` or `--name=value`) that `usage` does not name. Values are not
 * checked here (the script reads them).
 */
export function helpOrUnknown(args: readonly string[], usage: string, program: string): void {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(usage);
    Deno.exit(0);
  }
  const known = usageOptions(usage);
  for (const a of args) {
    if (!a.startsWith("--")) continue;
    const name = a.split("=")[0];
    if (!known.has(name)) {
      console.error(`${program}: unknown option ${name} (${program} --help lists the options)`);
      Deno.exit(2);
    }
  }
}

/** Every value given to option `name` (`--name value`), in order. */
export function flagValues(args: readonly string[], name: string): string[] {
  return args.flatMap((a, i) => (a === name && i + 1 < args.length ? [args[i + 1]] : []));
}

/** The last value given to option `name`, else `fallback`. */
export function flagValue(args: readonly string[], name: string, fallback: string): string {
  return flagValues(args, name).at(-1) ?? fallback;
}
