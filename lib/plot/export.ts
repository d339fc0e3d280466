/**
 * Render plotly.js figures to SVG / PNG through headless Chromium, and export them to figures/.
 *
 *   const svg = await renderFigure(fig, { format: "svg" });            // string
 *   const png = await renderFigure(fig, { format: "png", scale: 2 });  // Uint8Array
 *   await exportFigure(fig, "bpb_vs_bytes");   // figures/bpb_vs_bytes.svg + .png, written atomically
 *   await closeRenderer();                     // optional: the browser also goes when the process ends
 *
 * plotly.js needs a DOM, so it runs inside Debian's Chromium (/usr/bin/chromium, or CHROMIUM_PATH), driven
 * by puppeteer-core. ONE browser serves every figure of the process; it starts on the first render.
 *
 * How the browser never outlives us and never keeps us alive:
 * - Chromium is started by a small `sh` wrapper whose stdin is a pipe from this process. When that pipe
 *   closes (closeRenderer, a normal exit, Deno.exit, a crash, SIGKILL, a Jupyter kernel shutdown), the
 *   wrapper kills Chromium's whole process group and removes the temporary directory (profile, page, log).
 *   No exit handler of ours has to run.
 * - The wrapper process is unref'd, and the DevTools WebSocket is connected only while a render is in
 *   progress (reconnecting costs ~15 ms; the page with plotly loaded stays in the browser). So between
 *   renders nothing holds the event loop open and a script ends when its work ends. It also leaves no open
 *   socket behind for Deno.test's sanitizers.
 */

import { atomicWriteFile, pathExists as exists } from "../io/atomic.ts";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { recompressPng } from "./png.ts";

/** A plotly.js figure: {data, layout?, config?}. Typed arrays are allowed in traces. */
export interface PlotlyFigure {
  data: unknown[];
  layout?: Record<string, unknown>;
  config?: Record<string, unknown>;
  [key: string]: unknown;
}

export type ImageFormat = "svg" | "png";

export interface RenderOptions {
  format?: ImageFormat;
  /** CSS pixels; defaults: the figure's layout.width/height, else 800 x 500. */
  width?: number;
  height?: number;
  /** PNG pixel density (2 gives 1600 x 1000 pixels for 800 x 500). Ignored for SVG. Default 2. */
  scale?: number;
}

/** Rendering failed (no Chromium, the browser died, plotly rejected the figure, ...). */
export class RenderError extends Error {
  override name = "RenderError";
}

export const DEFAULT_WIDTH = 800;
export const DEFAULT_HEIGHT = 500;
export const DEFAULT_SCALE = 2;

/** Flags from docs/ENVIRONMENT.md: headless, no sandbox (root), no GPU, and no network chatter. */
export const CHROMIUM_FLAGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--disable-dev-shm-usage",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--no-default-browser-check",
  "--disable-extensions",
  "--mute-audio",
  "--hide-scrollbars",
  "--disable-crash-reporter",
  "--disable-breakpad",
  // Port 0: Chromium picks a free port and writes it to <profile>/DevToolsActivePort.
  "--remote-debugging-port=0",
];

/** The Chromium executable: CHROMIUM_PATH if set, else Debian's. */
export function chromiumPath(): string {
  return Deno.env.get("CHROMIUM_PATH") || "/usr/bin/chromium";
}

/**
 * Can a browser be started here? Cheap (no launch): checks that the executable exists. Callers that want
 * to degrade gracefully (notebook display) use this to say why there is no image.
 */
export async function chromiumAvailable(): Promise<{ ok: boolean; reason?: string }> {
  const path = chromiumPath();
  try {
    const st = await Deno.stat(path);
    if (st.isFile && st.mode !== null && (st.mode & 0o111) !== 0) return { ok: true };
    return { ok: false, reason: `${path} is not an executable file` };
  } catch {
    return {
      ok: false,
      reason: `no Chromium at ${path} (run \`deno task setup --with-chromium\`, or set CHROMIUM_PATH)`,
    };
  }
}

/**
 * Path of plotly.min.js in Deno's npm cache. plotly.js cannot be imported in Deno (it touches `window` at
 * load time), but Deno installs every npm import of deno.json before running, so resolving the specifier
 * gives a file:// URL into the cache. If the cache does not have it yet (e.g. a vendored or --cached-only
 * setup), a dynamic import makes Deno fetch the package; its evaluation error is expected and ignored.
 */
export async function plotlyScriptPath(): Promise<string> {
  const resolved = (): string | undefined => {
    const url = import.meta.resolve("plotly.js-dist-min");
    return url.startsWith("file:") ? decodeURIComponent(new URL(url).pathname) : undefined;
  };
  let path = resolved();
  if (!path || !(await exists(path))) {
    try {
      await import("plotly.js-dist-min");
    } catch {
      // "window is not defined": downloaded but not runnable here, which is all we need.
    }
    path = resolved();
  }
  if (!path || !(await exists(path))) {
    throw new RenderError(
      `cannot find plotly.min.js of npm:plotly.js-dist-min (resolved to ${
        import.meta.resolve("plotly.js-dist-min")
      }); ` +
        "run `deno install` in the repository to fill Deno's npm cache",
    );
  }
  return path;
}

/**
 * JSON-safe copy of a figure: typed arrays become plain arrays (JSON.stringify would turn a Float32Array
 * into {"0":..,"1":..}), non-finite numbers become null (plotly's gap), and functions are dropped.
 */
export function plainFigure<T>(fig: T): T {
  return JSON.parse(JSON.stringify(fig, (_key, value) => {
    if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
      return Array.from(
        value as unknown as ArrayLike<number | bigint>,
        (v) => typeof v === "bigint" ? Number(v) : v,
      );
    }
    if (typeof value === "bigint") return Number(value);
    return value;
  }));
}

// The wrapper that owns Chromium. $1 is our temporary directory; the rest is Chromium's command line.
// - INT/HUP/TERM are ignored so that Ctrl-C in a terminal (which reaches this process group) cannot skip the
//   cleanup; `cat` inherits that and ends only at EOF of the pipe from Deno. Chromium gets the defaults back
//   (ignored signals would otherwise be inherited through exec).
// - The pipe is passed to the watchdog as fd 3: sh gives a background job /dev/null as its stdin.
// - setsid gives Chromium its own process group, so one `kill -- -PID` reaches its helper processes too
//   (the plain `kill PID` covers the instant before setsid has run).
// - XDG_CONFIG_HOME/XDG_CACHE_HOME keep Chromium's crash database and caches in our directory.
// - The watchdog removes the directory with a few retries: SIGKILL is delivered asynchronously.
// - If Chromium exits by itself, the wrapper exits with its status (Deno sees that) and leaves the directory,
//   with chromium.log, until the pipe closes.
const WRAPPER = `
trap '' INT HUP TERM PIPE
dir=$1; shift
exec 3<&0
(
  trap - INT HUP TERM PIPE
  export XDG_CONFIG_HOME="$dir/config" XDG_CACHE_HOME="$dir/cache"
  exec setsid "$@" "--user-data-dir=$dir/profile" </dev/null >"$dir/chromium.log" 2>&1 3<&-
) &
browser=$!
{
  cat <&3 >/dev/null
  kill -KILL -- "-$browser" 2>/dev/null || kill -KILL "$browser" 2>/dev/null
  for i in 1 2 3 4 5 6 7 8 9 10; do rm -rf -- "$dir" 2>/dev/null && break; sleep 0.2; done
} &
exec 3<&-
wait "$browser"
status=$?
echo "chromium exited with status $status" >>"$dir/chromium.log"
exit "$status"
`;

const LAUNCH_TIMEOUT_MS = 30_000;
const PROTOCOL_TIMEOUT_MS = 120_000;

/** One headless Chromium with a page that has plotly.js loaded. */
class Renderer {
  #dir: string;
  #child: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #exited = false;
  #exitStatus?: Deno.CommandStatus;
  #closed: Promise<void>;
  #endpoint?: string;
  #browser?: Browser;
  #page?: Page;
  /** Renders run one at a time; this is the tail of the queue. */
  #queue: Promise<unknown> = Promise.resolve();
  #pending = 0;

  private constructor(dir: string, child: Deno.ChildProcess) {
    this.#dir = dir;
    this.#child = child;
    this.#stdin = child.stdin.getWriter();
    this.#closed = child.status.then((s) => {
      this.#exited = true;
      this.#exitStatus = s;
    });
    // The wrapper must not keep the process alive (it lives as long as the pipe, i.e. as long as we do).
    child.unref();
  }

  get dir(): string {
    return this.#dir;
  }

  get alive(): boolean {
    return !this.#exited;
  }

  /** Start Chromium (through the wrapper) and wait until its DevTools endpoint is known. */
  static async start(): Promise<Renderer> {
    const avail = await chromiumAvailable();
    if (!avail.ok) throw new RenderError(avail.reason);
    const plotly = await plotlyScriptPath();
    const dir = await Deno.makeTempDir({ prefix: `mambabyte-chromium-${Deno.pid}-` }); // pid: tests count their own
    // The page loads plotly from the npm cache by file:// URL: faster than injecting 4.6 MB through CDP.
    await Deno.writeTextFile(
      `${dir}/page.html`,
      `<!doctype html><html><head><meta charset="utf-8"></head><body>` +
        `<script src="${new URL(`file://${plotly}`).href}"></script></body></html>`,
    );
    const child = new Deno.Command("sh", {
      args: ["-c", WRAPPER, "sh", dir, chromiumPath(), ...CHROMIUM_FLAGS, "about:blank"],
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const r = new Renderer(dir, child);
    try {
      r.#endpoint = await r.#waitForEndpoint();
    } catch (e) {
      await r.close();
      throw e;
    }
    return r;
  }

  async #chromiumLog(): Promise<string> {
    try {
      const log = await Deno.readTextFile(`${this.#dir}/chromium.log`);
      return log.trimEnd().split("\n").slice(-15).join("\n");
    } catch {
      return "(no log)";
    }
  }

  async #waitForEndpoint(): Promise<string> {
    const file = `${this.#dir}/profile/DevToolsActivePort`;
    const deadline = Date.now() + LAUNCH_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (this.#exited) {
        throw new RenderError(
          `${chromiumPath()} exited during start-up (code ${this.#exitStatus?.code}):\n${await this
            .#chromiumLog()}`,
        );
      }
      try {
        const [port, path] = (await Deno.readTextFile(file)).split("\n");
        if (port && path) return `ws://127.0.0.1:${port.trim()}${path.trim()}`;
      } catch {
        // not written yet
      }
      await new Promise((res) => setTimeout(res, 25));
    }
    throw new RenderError(
      `${chromiumPath()} did not open its DevTools port within ${LAUNCH_TIMEOUT_MS / 1000} s:\n${await this
        .#chromiumLog()}`,
    );
  }

  /** Connect (or reconnect) to the browser and return the plotly page, loading it the first time. */
  async #connect(): Promise<Page> {
    if (this.#browser?.connected && this.#page && !this.#page.isClosed()) return this.#page;
    this.#browser = await puppeteer.connect({
      browserWSEndpoint: this.#endpoint!,
      defaultViewport: null,
      protocolTimeout: PROTOCOL_TIMEOUT_MS,
    });
    const pageUrl = new URL(`file://${this.#dir}/page.html`).href;
    const pages = await this.#browser.pages();
    let page = pages.find((p) => p.url() === pageUrl);
    if (!page) {
      page = await this.#browser.newPage();
      await page.goto(pageUrl, { waitUntil: "load" });
      const ok = await page.evaluate(() => typeof (globalThis as any).Plotly?.toImage === "function");
      if (!ok) throw new RenderError(`plotly.js did not load in Chromium from ${pageUrl}`);
    }
    this.#page = page;
    return page;
  }

  async #disconnect(): Promise<void> {
    const b = this.#browser;
    this.#browser = undefined;
    this.#page = undefined;
    if (b?.connected) await b.disconnect();
  }

  /** Run `task` with the page, one task at a time; disconnect when no task is waiting. */
  run<T>(task: (page: Page) => Promise<T>): Promise<T> {
    this.#pending++;
    const result = this.#queue.then(async () => {
      try {
        if (this.#exited) {
          throw new RenderError(`Chromium is no longer running:\n${await this.#chromiumLog()}`);
        }
        return await task(await this.#connect());
      } finally {
        this.#pending--;
        if (this.#pending === 0) await this.#disconnect().catch(() => {});
      }
    });
    this.#queue = result.catch(() => {});
    return result;
  }

  /** Disconnect, close the pipe (the wrapper then kills Chromium and removes the directory), and wait. */
  async close(): Promise<void> {
    await this.#queue;
    await this.#disconnect().catch(() => {});
    await this.#stdin.close().catch(() => {});
    // Waiting on an unref'd child would let the event loop run dry ("Promise resolution is still pending").
    this.#child.ref();
    await this.#closed;
    // The watchdog removes the directory right after the kill; wait for it (bounded) so callers and tests
    // see a clean /tmp when close() returns.
    for (let i = 0; i < 50 && (await exists(this.#dir)); i++) await new Promise((r) => setTimeout(r, 50));
  }
}

let shared: Promise<Renderer> | undefined;

/** The process-wide renderer, started on first use (and restarted if its browser died). */
async function renderer(): Promise<Renderer> {
  if (shared) {
    const r = await shared.catch(() => undefined);
    if (r?.alive) return r;
    if (r) await r.close().catch(() => {});
    shared = undefined;
  }
  shared = Renderer.start();
  try {
    return await shared;
  } catch (e) {
    shared = undefined;
    throw e;
  }
}

/**
 * Runs `task` on a fresh page of the shared headless Chromium, closed afterwards (browser tests: the
 * notebook server, figures in a page). Uses the same browser and clean-up as figure rendering.
 */
export async function withPage<T>(task: (page: Page) => Promise<T>): Promise<T> {
  const r = await renderer();
  return await r.run(async (plotlyPage) => {
    const page = await plotlyPage.browser().newPage();
    try {
      return await task(page);
    } finally {
      await page.close().catch(() => {});
    }
  });
}

/** Stop the shared browser (if any). Safe to call any number of times; a later render starts a new one. */
export async function closeRenderer(): Promise<void> {
  const s = shared;
  shared = undefined;
  const r = await s?.catch(() => undefined);
  await r?.close();
}

/** Resolve width/height: explicit options, then the figure's layout, then defaults. */
function size(fig: PlotlyFigure, opts: RenderOptions): { width: number; height: number } {
  const lw = fig.layout?.width, lh = fig.layout?.height;
  const width = opts.width ?? (typeof lw === "number" ? lw : DEFAULT_WIDTH);
  const height = opts.height ?? (typeof lh === "number" ? lh : DEFAULT_HEIGHT);
  if (!(width > 0 && height > 0)) throw new RenderError(`bad figure size ${width} x ${height}`);
  return { width, height };
}

function decodeBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Render a figure to an SVG document (string) or PNG bytes (Uint8Array). */
export async function renderFigure(
  fig: PlotlyFigure,
  opts: RenderOptions & { format: "png" },
): Promise<Uint8Array>;
export async function renderFigure(
  fig: PlotlyFigure,
  opts?: RenderOptions & { format?: "svg" },
): Promise<string>;
export async function renderFigure(
  fig: PlotlyFigure,
  opts: RenderOptions = {},
): Promise<string | Uint8Array> {
  const format = opts.format ?? "svg";
  if (format !== "svg" && format !== "png") throw new RenderError(`unknown image format '${format}'`);
  if (!fig || !Array.isArray(fig.data)) throw new RenderError("a figure needs a `data` array of traces");
  const { width, height } = size(fig, opts);
  // plotly multiplies an SVG's width/height attributes by `scale` too (the viewBox stays): keep SVGs at 1.
  const scale = format === "svg" ? 1 : opts.scale ?? DEFAULT_SCALE;
  // Sent as a JSON string: exact, and independent of how CDP serialises nested values.
  const json = JSON.stringify(plainFigure({ data: fig.data, layout: fig.layout ?? {} }));
  const r = await renderer();
  const dataUrl = await r.run((page) =>
    page.evaluate(
      async (json: string, format: string, width: number, height: number, scale: number) => {
        const Plotly = (globalThis as any).Plotly;
        try {
          return await Plotly.toImage(JSON.parse(json), { format, width, height, scale });
        } catch (e) {
          // Errors thrown in the page arrive without their message otherwise.
          return `error:${e instanceof Error ? e.message : String(e)}`;
        }
      },
      json,
      format,
      width,
      height,
      scale,
    )
  ) as string;
  if (dataUrl.startsWith("error:")) {
    throw new RenderError(`plotly could not render the figure: ${dataUrl.slice(6)}`);
  }
  const comma = dataUrl.indexOf(",");
  if (!dataUrl.startsWith("data:") || comma < 0) {
    throw new RenderError(`unexpected answer from Plotly.toImage: ${dataUrl.slice(0, 80)}`);
  }
  const head = dataUrl.slice(0, comma), body = dataUrl.slice(comma + 1);
  if (format === "png") {
    if (!head.endsWith(";base64")) throw new RenderError(`unexpected PNG data URL header ${head}`);
    return recompressPng(decodeBase64(body)); // the same pixels in about a quarter fewer bytes (png.ts)
  }
  return head.endsWith(";base64") ? new TextDecoder().decode(decodeBase64(body)) : decodeURIComponent(body);
}

export interface ExportOptions extends Omit<RenderOptions, "format"> {
  /** Output folder (created if missing). Default "figures" (relative to the current directory). */
  dir?: string;
  /** Which files to write. Default both. */
  formats?: ImageFormat[];
}

/** File names allowed for exported figures: no folders, nothing hidden. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Export a figure to DIR/NAME.svg and DIR/NAME.png. Both images are rendered before either file is
 * written, and each file is written atomically. Returns the paths written.
 */
export async function exportFigure(
  fig: PlotlyFigure,
  name: string,
  opts: ExportOptions = {},
): Promise<{ svg?: string; png?: string }> {
  if (!NAME_RE.test(name) || name.endsWith(".svg") || name.endsWith(".png")) {
    throw new RenderError(
      `figure name '${name}' must be a plain file stem like 'bpb_vs_bytes' (no folder, no extension)`,
    );
  }
  const dir = (opts.dir ?? "figures").replace(/\/+$/, "") || "/";
  const formats = opts.formats ?? ["svg", "png"];
  const images: [ImageFormat, string | Uint8Array][] = [];
  for (const format of formats) {
    images.push([
      format,
      format === "png"
        ? await renderFigure(fig, { ...opts, format })
        : await renderFigure(fig, { ...opts, format: "svg" }),
    ]);
  }
  await Deno.mkdir(dir, { recursive: true });
  const out: { svg?: string; png?: string } = {};
  for (const [format, data] of images) {
    const path = `${dir}/${name}.${format}`;
    await atomicWriteFile(path, data);
    out[format] = path;
  }
  return out;
}
