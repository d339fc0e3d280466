/**
 * `deno task lab`: the notebooks, live, in a browser. Starts Debian's Jupyter Notebook server with the
 * Deno kernel on localhost, rooted at the repository, and prints the address to open.
 *
 *   deno task lab [--port 8888] [--token TOKEN] [--open NOTEBOOK]
 *
 * The server listens on 127.0.0.1 only, with a random token (or --token) in the printed address; Ctrl-C
 * stops it. `startLab` is the same as a library call (the browser test uses it).
 */
import { DEBIAN_JUPYTER, isRoot } from "../setup.ts";
import { REPO_ROOT } from "../paths.ts";

export interface LabOptions {
  /** Port on 127.0.0.1 (default 8888; 0 picks a free one). */
  port?: number;
  /** The access token (default: random). */
  token?: string;
  /** Print the server's own log lines (default false: only the address and errors). */
  verbose?: boolean;
  /** Extra environment for the server and the kernels it starts (e.g. SCALE). */
  env?: Record<string, string>;
}

export interface Lab {
  /** The address of the notebook list, token included. */
  url: string;
  port: number;
  token: string;
  /** The address of one notebook (a path under the repository), token included. */
  notebookUrl(path: string): string;
  /** Stops the server and waits for it to exit. */
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1. */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Starts the notebook server and resolves once it listens (it prints its address when ready). */
export async function startLab(opts: LabOptions = {}): Promise<Lab> {
  const port = opts.port === 0 ? freePort() : opts.port ?? 8888;
  const token = opts.token ?? crypto.randomUUID().replaceAll("-", "");
  const proc = new Deno.Command(DEBIAN_JUPYTER, {
    args: [
      "notebook",
      "--no-browser",
      "--ip=127.0.0.1",
      `--port=${port}`,
      "--port-retries=0",
      `--notebook-dir=${REPO_ROOT}`,
      `--NotebookApp.token=${token}`,
      "--NotebookApp.password=",
      ...(isRoot() ? ["--allow-root"] : []), // the README's machines run as root; it listens on 127.0.0.1 only
    ],
    cwd: REPO_ROOT,
    env: { PYDEVD_DISABLE_FILE_VALIDATION: "1", NO_COLOR: "1", ...opts.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const base = `http://127.0.0.1:${port}`;
  // The server logs to stderr; "is running at" (classic notebook) means it listens. Everything it prints
  // is kept, so a server that exits first is reported with its own words.
  const log: string[] = [];
  const ready = new Promise<void>((resolve, reject) => {
    const decoder = new TextDecoder();
    let buffered = "";
    let resolved = false;
    (async () => {
      for await (const chunk of proc.stderr) {
        buffered += decoder.decode(chunk, { stream: true });
        const lines = buffered.split("\n");
        buffered = lines.pop() ?? "";
        for (const line of lines) {
          log.push(line);
          if (opts.verbose || (resolved && /\b(ERROR|CRITICAL)\b/.test(line))) console.error(line);
          if (!resolved && /is running at|Jupyter Notebook .* is running/.test(line)) {
            resolved = true;
            resolve();
          }
        }
      }
      if (!resolved) {
        reject(new Error(`the notebook server exited before listening:\n${log.slice(-15).join("\n")}`));
      }
    })();
  });
  proc.stdout.pipeTo(new WritableStream()).catch(() => {});
  const exited = proc.status;
  await Promise.race([
    ready,
    exited.then((s) => {
      throw new Error(`the notebook server exited (code ${s.code}):\n${log.slice(-15).join("\n")}`);
    }),
  ]);
  return {
    url: `${base}/tree?token=${token}`,
    port,
    token,
    notebookUrl: (path: string) =>
      `${base}/notebooks/${path.split("/").map(encodeURIComponent).join("/")}?token=${token}`,
    stop: async () => {
      try {
        proc.kill("SIGTERM");
      } catch { /* already gone */ }
      await exited;
    },
  };
}

const USAGE =
  "deno task lab [--port N (default 8888; 0: any free port)] [--token TOKEN] [--open NOTEBOOK] [--verbose]";

async function main(args: string[]): Promise<number> {
  const opts: LabOptions = {};
  let open: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--help" || a === "-h") {
      console.log(USAGE);
      return 0;
    } else if (a === "--port") {
      const p = Number(value());
      if (!Number.isInteger(p) || p < 0 || p > 65535) {
        throw new Error(`--port: expected 0-65535, got ${args[i]}`);
      }
      opts.port = p === 0 ? freePort() : p;
    } else if (a === "--token") opts.token = value();
    else if (a === "--open") open = value();
    else if (a === "--verbose") opts.verbose = true;
    else throw new Error(`unknown option ${a}\n${USAGE}`);
  }
  const lab = await startLab(opts);
  const stop = () => lab.stop().then(() => Deno.exit(0));
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  console.log(
    `The notebooks are served at\n  ${open ? lab.notebookUrl(open) : lab.url}\n(Ctrl-C stops the server)`,
  );
  await new Promise(() => {}); // until a signal
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`lab: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
