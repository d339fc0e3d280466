/**
 * Idempotent machine setup for a fresh Debian 12 machine (run as root).
 *
 *   deno run -A lib/setup.ts [--quiet] [--with-notebooks] [--with-lab] [--with-webgpu] [--with-chromium]
 *     [--with-llama] [--with-torch]
 *
 * It checks what is present and installs only what is missing. Always: a stable copy of the running Deno
 * (the README's first command runs Deno from npx's cache, which can be cleaned), `deno` on PATH pointing
 * at it when no deno is there, and the Deno Jupyter kernelspec pointing at the stable copy. Then:
 *   --with-chromium   Debian's `chromium` (+ fonts-liberation so PNG text has an Arial-metric font);
 *                     skipped when CHROMIUM_PATH names an existing executable.
 *   --with-notebooks  jupyter-nbconvert, python3-nbclient and Deno's Jupyter kernelspec; implies
 *                     --with-chromium (notebooks render their figures to SVG through Chromium).
 *   --with-lab        also Debian's Jupyter Notebook server and jupyter-client (`deno task lab`); implies
 *                     --with-notebooks.
 *   --with-webgpu     mesa-vulkan-drivers (lavapipe: software Vulkan, so WebGPU code runs on CPU machines).
 *   --with-llama      llama.cpp (node-llama-cpp's prebuilt Linux x64 libraries, npm) and a small C driver of
 *                     it built with Debian's gcc, in .tools/llama: the GGUF export's reference.
 *   --with-torch      Debian's python3-torch (PyTorch 1.13, CPU): the torch engine's jobs (lib/runs/job.ts)
 *                     run on it in the tests, as CPU processes over gloo; `torchPython()` finds it.
 *
 * `apt-get update` runs at most once, and only when some package must be installed. Without root, a missing
 * package is an error that says what to install. The helpers are exported for tests and other scripts.
 */

/** What to make sure of. */
export interface SetupOptions {
  quiet: boolean;
  notebooks: boolean;
  lab: boolean;
  webgpu: boolean;
  chromium: boolean;
  llama: boolean;
  torch: boolean;
}

/** Raised with a message that names the failing package or command and what to do about it. */
export class SetupError extends Error {
  override name = "SetupError";
}

/** Debian packages per feature. */
export const APT_PACKAGES = {
  notebooks: ["jupyter-nbconvert", "python3-nbclient"],
  // the notebook server for `deno task lab`; jupyter-client brings `jupyter kernelspec`
  lab: ["jupyter-notebook", "jupyter-client"],
  webgpu: ["mesa-vulkan-drivers"],
  // fonts-liberation is only "recommended" by chromium-common; we install without recommends, and a machine
  // without any font renders every label as empty boxes in PNGs.
  chromium: ["chromium", "fonts-liberation"],
  // the C compiler that builds the llama.cpp reference driver (tests/reference/llama_logits.c)
  llama: ["gcc", "libc6-dev"],
  // PyTorch for the torch engine's CPU jobs (torchrun over gloo); numpy comes with it
  torch: ["python3-torch"],
} as const;

/** Where Debian's chromium lives; CHROMIUM_PATH overrides. */
export const DEFAULT_CHROMIUM = "/usr/bin/chromium";

/** Debian's Jupyter (Debian's Python, whatever python3 is first on PATH, e.g. a pyenv shim). */
export const DEBIAN_JUPYTER = "/usr/bin/jupyter";
export const DEBIAN_PYTHON = "/usr/bin/python3";

/** Parse the command line of lib/setup.ts. Unknown flags are an error (a typo should not pass silently). */
export function parseSetupArgs(args: string[]): SetupOptions {
  const opts: SetupOptions = {
    quiet: false,
    notebooks: false,
    lab: false,
    webgpu: false,
    chromium: false,
    llama: false,
    torch: false,
  };
  for (const a of args) {
    if (a === "--quiet" || a === "-q") opts.quiet = true;
    else if (a === "--with-notebooks") opts.notebooks = true;
    else if (a === "--with-lab") opts.lab = opts.notebooks = true;
    else if (a === "--with-webgpu") opts.webgpu = true;
    else if (a === "--with-chromium") opts.chromium = true;
    else if (a === "--with-llama") opts.llama = true;
    else if (a === "--with-torch") opts.torch = true;
    else {
      throw new SetupError(
        `unknown argument '${a}' (expected --quiet, --with-notebooks, --with-lab, --with-webgpu, --with-chromium, ` +
          "--with-llama, --with-torch)",
      );
    }
  }
  if (opts.notebooks) opts.chromium = true; // notebooks render their figures through Chromium
  return opts;
}

/** Result of a finished command. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Run a command to completion. `inherit` streams its output to ours (long apt installs show progress);
 * otherwise output is captured. A command that cannot start (not installed) gives code 127.
 */
export async function runCommand(
  cmd: string[],
  opts: { inherit?: boolean; env?: Record<string, string> } = {},
): Promise<CommandResult> {
  const io = opts.inherit ? "inherit" : "piped";
  try {
    const out = await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdin: "null",
      stdout: io,
      stderr: io,
      env: opts.env,
    }).output();
    const dec = new TextDecoder();
    return {
      code: out.code,
      stdout: opts.inherit ? "" : dec.decode(out.stdout),
      stderr: opts.inherit ? "" : dec.decode(out.stderr),
    };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { code: 127, stdout: "", stderr: `${cmd[0]}: not found` };
    throw e;
  }
}

/** True when running as root (apt-get can install). */
export function isRoot(): boolean {
  return Deno.uid?.() === 0;
}

/** Is a Debian package installed (dpkg status "installed", not merely known or half-removed)? */
export async function aptPackageInstalled(pkg: string): Promise<boolean> {
  const r = await runCommand(["dpkg-query", "-W", "-f=${db:Status-Status}", pkg]);
  return r.code === 0 && r.stdout.trim() === "installed";
}

/** The subset of `pkgs` that is not installed, in order. */
export async function missingAptPackages(pkgs: readonly string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const p of pkgs) if (!(await aptPackageInstalled(p))) missing.push(p);
  return missing;
}

/** The last lines of a command's output, for error messages. */
function tail(text: string, lines = 20): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/**
 * Install Debian packages: one `apt-get update`, then one `apt-get install` of all of them. Without
 * recommends (chromium would pull in udev, upower, printing; nbconvert pandoc) — what we need is listed.
 * Waits for the dpkg lock (an unattended-upgrades run at boot otherwise fails the install).
 */
export async function installAptPackages(pkgs: string[], opts: { quiet?: boolean } = {}): Promise<void> {
  if (pkgs.length === 0) return;
  const list = pkgs.join(" ");
  if (!isRoot()) {
    throw new SetupError(
      `missing Debian packages: ${list}. Install them as root:\n` +
        `  apt-get update && apt-get install -y --no-install-recommends ${list}\n` +
        `then run this again.`,
    );
  }
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const lock = ["-o", "DPkg::Lock::Timeout=300"];
  console.log(`setup: installing ${list} (apt-get) ...`);
  const inherit = !opts.quiet;
  const update = await runCommand(["apt-get", ...lock, "update"], { env, inherit });
  // A failed update (one unreachable mirror) may still leave usable lists: try the install, and name both.
  const updateNote = update.code === 0
    ? ""
    : `\n('apt-get update' also failed with exit code ${update.code}${
      update.stderr ? ":\n" + tail(update.stderr) : ""
    })`;
  const cmd = ["apt-get", ...lock, "install", "-y", "--no-install-recommends", ...pkgs];
  const install = await runCommand(cmd, { env, inherit });
  if (install.code !== 0) {
    throw new SetupError(
      `installing Debian packages failed (exit code ${install.code}): ${list}\n` +
        `command: DEBIAN_FRONTEND=noninteractive ${cmd.join(" ")}` +
        (install.stderr || install.stdout ? "\n" + tail(install.stderr || install.stdout) : "") + updateNote,
    );
  }
  const still = await missingAptPackages(pkgs);
  if (still.length) throw new SetupError(`apt-get reported success but these are not installed: ${still}`);
}

/** The Chromium executable renderers should use: CHROMIUM_PATH if set, else Debian's. */
export function chromiumPath(): string {
  return Deno.env.get("CHROMIUM_PATH") || DEFAULT_CHROMIUM;
}

/** Is `path` an existing executable file? */
export async function isExecutable(path: string): Promise<boolean> {
  try {
    const st = await Deno.stat(path);
    return st.isFile && st.mode !== null && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** Home directory (Jupyter's per-user data lives below it). */
function homeDir(): string {
  const h = Deno.env.get("HOME");
  if (!h) throw new SetupError("HOME is not set: cannot locate ~/.local/share/jupyter");
  return h;
}

// ---------------------------------------------------------------------------------------------------
// A stable Deno: the README's first command runs Deno from npx's cache (a path that a cache clean, another
// npx version or a new clone changes), so setup keeps a copy of the running Deno at a fixed, versioned
// place, points the Jupyter kernelspec at it, and puts `deno` on PATH when there is none.

/** The fixed place of this Deno version's copy: /usr/local/lib (root) or ~/.local/share (a user). */
export function stableDenoPath(): string {
  const base = isRoot() ? "/usr/local/lib/mambabyte-lab" : `${homeDir()}/.local/share/mambabyte-lab`;
  return `${base}/deno-${Deno.version.deno}/deno`;
}

/** Where `deno` is put on PATH when no deno is there: /usr/local/bin (root) or ~/.local/bin. */
export function denoLinkPath(): string {
  return isRoot() ? "/usr/local/bin/deno" : `${homeDir()}/.local/bin/deno`;
}

/** The version a `deno` executable reports, or undefined when it does not run. */
async function denoVersionOf(exe: string): Promise<string | undefined> {
  const r = await runCommand([exe, "--version"], { env: { NO_COLOR: "1" } });
  return r.code === 0 ? /deno (\S+)/.exec(r.stdout)?.[1] : undefined;
}

/** The first `deno` on PATH, or undefined. */
async function denoOnPath(): Promise<string | undefined> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":").filter(Boolean)) {
    if (await isExecutable(`${dir}/deno`)) return `${dir}/deno`;
  }
  return undefined;
}

/** What `ensureStableDeno` found or did. */
export interface StableDeno {
  /** The stable copy the kernelspec uses. */
  path: string;
  /** The `deno` that PATH finds after setup (undefined: none, with `note` saying what to do). */
  onPath?: string;
  note?: string;
}

/**
 * Copies the running Deno to `stableDenoPath()` when missing (written under a temporary name, then
 * renamed), and links `deno` on PATH to it when PATH has no deno. A deno already on PATH is left alone
 * (a user's own install), with a note when its version differs.
 */
export async function ensureStableDeno(opts: { quiet?: boolean } = {}): Promise<StableDeno> {
  const path = stableDenoPath();
  if ((await realPath(path)) === undefined) {
    const dir = path.slice(0, path.lastIndexOf("/"));
    await Deno.mkdir(dir, { recursive: true });
    const tmp = `${path}.tmp-${Deno.pid}`;
    await Deno.copyFile(Deno.execPath(), tmp);
    await Deno.chmod(tmp, 0o755);
    await Deno.rename(tmp, path);
    if (!opts.quiet) console.log(`setup: copied Deno ${Deno.version.deno} to ${path}`);
  }
  const found = await denoOnPath();
  if (found) {
    const version = await denoVersionOf(found);
    return version === Deno.version.deno ? { path, onPath: found } : {
      path,
      onPath: found,
      note:
        `the deno on PATH (${found}) is version ${version ?? "?"}; this project pins ${Deno.version.deno} ` +
        `(${path})`,
    };
  }
  const link = denoLinkPath();
  const linkDir = link.slice(0, link.lastIndexOf("/"));
  await Deno.mkdir(linkDir, { recursive: true });
  await Deno.remove(link).catch(() => {}); // a dangling link of an earlier version
  await Deno.symlink(path, link);
  if (!opts.quiet) console.log(`setup: ${link} -> ${path}`);
  const onPath = (Deno.env.get("PATH") ?? "").split(":").includes(linkDir);
  return onPath ? { path, onPath: link } : {
    path,
    note:
      `deno is installed as ${link}, but ${linkDir} is not on PATH: add it (export PATH="${linkDir}:$PATH")`,
  };
}

/**
 * Where `deno jupyter --install` writes the kernelspec. Deno always uses the per-user data dir
 * (~/.local/share/jupyter, ignoring JUPYTER_DATA_DIR), so that is what we check.
 */
export function denoKernelSpecPath(): string {
  return `${homeDir()}/.local/share/jupyter/kernels/deno/kernel.json`;
}

/** State of the Deno kernelspec relative to the running Deno. */
export interface KernelStatus {
  path: string;
  exists: boolean;
  /** argv[0] of the kernelspec, when it exists and parses. */
  argv0?: string;
  /** True when argv[0] is (after resolving symlinks) the stable copy of the Deno running now. */
  current: boolean;
}

async function realPath(p: string): Promise<string | undefined> {
  try {
    return await Deno.realPath(p);
  } catch {
    return undefined;
  }
}

/**
 * Check the Deno kernelspec. kernel.json stores an ABSOLUTE deno path, so it must name the stable copy
 * (`stableDenoPath`), never the npx cache or a clone's .tools folder, which move or vanish. Compare real
 * paths.
 */
export async function denoKernelStatus(): Promise<KernelStatus> {
  const path = denoKernelSpecPath();
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return { path, exists: false, current: false };
  }
  let argv0: string | undefined;
  try {
    const spec = JSON.parse(text);
    argv0 = Array.isArray(spec.argv) ? String(spec.argv[0]) : undefined;
  } catch {
    return { path, exists: true, current: false };
  }
  const a = argv0 ? await realPath(argv0) : undefined;
  const b = await realPath(stableDenoPath());
  return { path, exists: true, argv0, current: a !== undefined && a === b };
}

/** (Re)install the Deno kernelspec with the stable Deno's path when it is missing or stale. */
export async function ensureDenoKernel(opts: { quiet?: boolean } = {}): Promise<KernelStatus> {
  const { path: deno } = await ensureStableDeno(opts);
  const before = await denoKernelStatus();
  if (before.current) return before;
  if (!opts.quiet || before.exists) {
    console.log(
      before.exists
        ? `setup: Deno kernelspec points at ${before.argv0 ?? "?"}; reinstalling for ${deno}`
        : `setup: installing the Deno Jupyter kernelspec (${deno})`,
    );
  }
  const cmd = [deno, "jupyter", "--install", "--force"];
  const r = await runCommand(cmd, { env: { NO_COLOR: "1" } });
  if (r.code !== 0) {
    throw new SetupError(`'${cmd.join(" ")}' failed (exit code ${r.code}):\n${tail(r.stderr || r.stdout)}`);
  }
  const after = await denoKernelStatus();
  if (!after.current) {
    throw new SetupError(
      `'${cmd.join(" ")}' ran but ${after.path} does not point at ${deno} (argv[0]: ${after.argv0})`,
    );
  }
  return after;
}

/**
 * Ask Debian's Jupyter (its jupyter_client, which nbclient uses to start kernels) which kernelspec "deno"
 * resolves to. JUPYTER_PATH / JUPYTER_DATA_DIR or a system-wide "deno" kernel can shadow the per-user one.
 * (`jupyter kernelspec` is not available: Debian ships that subcommand in a package we do not need.)
 */
export async function jupyterSeesDenoKernel(): Promise<{ ok: boolean; detail: string }> {
  const py = [
    "import json",
    "from jupyter_client.kernelspec import KernelSpecManager",
    "m = KernelSpecManager()",
    "d = m.find_kernel_specs().get('deno')",
    "print(json.dumps(d and {'dir': d, 'argv': m.get_kernel_spec('deno').argv}))",
  ].join("\n");
  const r = await runCommand([DEBIAN_PYTHON, "-c", py]);
  if (r.code !== 0) return { ok: false, detail: `asking jupyter_client failed: ${tail(r.stderr)}` };
  try {
    const found = JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "null");
    if (!found) return { ok: false, detail: "Jupyter finds no 'deno' kernel" };
    const argv0 = String(found.argv?.[0]);
    const ok = (await realPath(argv0)) === (await realPath(stableDenoPath()));
    return { ok, detail: `${found.dir} -> ${argv0}` };
  } catch (e) {
    return { ok: false, detail: `cannot parse jupyter_client's answer (${e}): ${r.stdout}` };
  }
}

/** What setup found and did. */
export interface SetupReport {
  installed: string[];
  deno: StableDeno;
  kernel?: KernelStatus;
  chromium?: string;
  /** the llama.cpp reference driver (--with-llama) */
  llama?: string;
  /** a python that imports torch (--with-torch) */
  torch?: string;
}

/**
 * llama.cpp as a reference (the GGUF export's test compares its logits) and a peer: node-llama-cpp's
 * prebuilt libraries for Linux x64 (llama.cpp v0.5.0), no JavaScript of it; the headers of the same release
 * from the source bundle it ships; tests/reference/llama_logits.c built against them. In .tools/llama
 * (ignored by git). A benchmark and test dependency only: nothing else in the project needs it.
 */
export const LLAMA_NPM = ["node-llama-cpp@3.22.1", "@node-llama-cpp/linux-x64@3.22.1"];

export function llamaPaths(): { dir: string; bins: string; driver: string } {
  const dir = new URL("../.tools/llama", import.meta.url).pathname;
  return {
    dir,
    bins: `${dir}/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64`,
    driver: `${dir}/llama_logits`,
  };
}

async function ensureLlama(opts: { quiet?: boolean }): Promise<string> {
  const p = llamaPaths();
  if (await isExecutable(p.driver)) return p.driver;
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") {
    throw new SetupError(
      `--with-llama: node-llama-cpp's prebuilt llama.cpp is used for Linux x64 only (this is ${Deno.build.os} ` +
        `${Deno.build.arch})`,
    );
  }
  const step = async (what: string, cmd: string[]) => {
    if (!opts.quiet) console.log(`setup: ${what}`);
    const r = await runCommand(cmd);
    if (r.code !== 0) {
      throw new SetupError(`--with-llama: ${what} failed (${cmd.join(" ")}):\n${tail(r.stderr || r.stdout)}`);
    }
  };
  await Deno.mkdir(p.dir, { recursive: true });
  // --ignore-scripts: node-llama-cpp's install script would look for (or build) binaries; the prebuilt
  // package is named explicitly instead of through optional dependencies (which also pull CUDA builds)
  await step(`npm install ${LLAMA_NPM.join(" ")} into ${p.dir}`, [
    "npm",
    "install",
    "--prefix",
    p.dir,
    "--no-audit",
    "--no-fund",
    "--ignore-scripts",
    "--omit=optional",
    ...LLAMA_NPM,
  ]);
  const src = `${p.dir}/src`;
  if (!(await Deno.stat(`${src}/include/llama.h`).then(() => true, () => false))) {
    await Deno.remove(src, { recursive: true }).catch(() => {}); // a clone cut short
    await step("the llama.cpp release's headers (git clone of node-llama-cpp's source bundle)", [
      "git",
      "clone",
      "--quiet",
      `${p.dir}/node_modules/node-llama-cpp/llama/gitRelease.bundle`,
      src,
    ]);
  }
  const driverSource = new URL("../tests/reference/llama_logits.c", import.meta.url).pathname;
  const tmp = `${p.driver}.tmp`;
  await step("building tests/reference/llama_logits.c", [
    "gcc",
    "-O2",
    "-o",
    tmp,
    driverSource,
    `-I${src}/include`,
    `-I${src}/ggml/include`,
    `-L${p.bins}`,
    "-l:libllama.v0.5.0.so",
    "-l:libggml.v0.5.0.so",
    "-lggml-base",
    `-Wl,-rpath,${p.bins}`,
  ]);
  await Deno.rename(tmp, p.driver);
  return p.driver;
}

/**
 * A python that imports torch and numpy: $PYTHON when set, else Debian's /usr/bin/python3, else the first
 * python3 on PATH (a pyenv shim may come first there and lack torch); undefined when none does.
 */
export async function torchPython(): Promise<string | undefined> {
  const env = Deno.env.get("PYTHON");
  for (const python of env ? [env] : [DEBIAN_PYTHON, "python3"]) {
    const r = await runCommand([python, "-c", "import torch, numpy"]);
    if (r.code === 0) return python;
  }
  return undefined;
}

/** Make sure of everything `opts` asks for. Throws SetupError with a clear message on failure. */
export async function setup(opts: SetupOptions): Promise<SetupReport> {
  const wanted: string[] = [];
  if (opts.notebooks) wanted.push(...APT_PACKAGES.notebooks);
  if (opts.lab) wanted.push(...APT_PACKAGES.lab);
  if (opts.webgpu) wanted.push(...APT_PACKAGES.webgpu);
  if (opts.torch && !(await torchPython())) wanted.push(...APT_PACKAGES.torch);
  if (opts.llama && !(await isExecutable(llamaPaths().driver))) wanted.push(...APT_PACKAGES.llama);
  const customChromium = Deno.env.get("CHROMIUM_PATH");
  if (opts.chromium) {
    if (customChromium && await isExecutable(customChromium)) {
      // A user-provided browser: do not require Debian's.
    } else if (customChromium) {
      throw new SetupError(`CHROMIUM_PATH=${customChromium} is not an executable file`);
    } else {
      wanted.push(...APT_PACKAGES.chromium);
    }
  }
  const missing = await missingAptPackages(wanted);
  await installAptPackages(missing, opts);

  const report: SetupReport = { installed: missing, deno: await ensureStableDeno(opts) };
  if (opts.chromium) {
    const path = chromiumPath();
    if (!(await isExecutable(path))) {
      throw new SetupError(`${path} is missing although its package is installed (set CHROMIUM_PATH?)`);
    }
    report.chromium = path;
  }
  if (opts.llama) report.llama = await ensureLlama(opts);
  if (opts.torch) {
    const python = await torchPython();
    if (!python) {
      throw new SetupError(
        `python3-torch is installed but ${
          Deno.env.get("PYTHON") ?? DEBIAN_PYTHON
        } cannot import torch and numpy` +
          (Deno.env.get("PYTHON") ? " (PYTHON names it; unset PYTHON to use Debian's)" : ""),
      );
    }
    report.torch = python;
  }
  if (opts.notebooks) {
    report.kernel = await ensureDenoKernel(opts);
    const seen = await jupyterSeesDenoKernel();
    if (!seen.ok) {
      throw new SetupError(
        `Jupyter does not start the Deno kernel from ${stableDenoPath()}: ${seen.detail}\n` +
          `(JUPYTER_PATH or JUPYTER_DATA_DIR may point elsewhere; Deno installs into ~/.local/share/jupyter)`,
      );
    }
  }
  return report;
}

const USAGE =
  `deno task setup [options]      (idempotent machine setup for Debian 12; installs only what is missing)
  always: a stable copy of the running Deno, deno on PATH when none is there, the Deno Jupyter kernelspec
  --quiet, -q         print only what changes
  --with-chromium     Debian's chromium and fonts-liberation (skipped when CHROMIUM_PATH names one)
  --with-notebooks    jupyter-nbconvert, python3-nbclient; implies --with-chromium
  --with-lab          Debian's Jupyter Notebook server and jupyter-client (deno task lab); implies --with-notebooks
  --with-webgpu       mesa-vulkan-drivers (lavapipe: software Vulkan, so WebGPU code runs on CPU machines)
  --with-llama        llama.cpp as a reference and peer: node-llama-cpp's prebuilt Linux x64 libraries and
                      a small C driver (tests/reference/llama_logits.c) in .tools/llama; gcc from Debian
  --with-torch        Debian's python3-torch: the torch engine's jobs (deno task mambabyte job) on CPU processes`;

async function main(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  try {
    const opts = parseSetupArgs(args);
    const report = await setup(opts);
    if (report.deno.note) console.log(`setup: ${report.deno.note}`);
    if (!opts.quiet) {
      const parts = [
        report.installed.length ? `installed ${report.installed.join(", ")}` : "nothing to install",
      ];
      parts.push(`deno: ${report.deno.onPath ?? report.deno.path}`);
      if (report.chromium) parts.push(`chromium: ${report.chromium}`);
      if (report.kernel) parts.push(`deno kernel: ${report.kernel.path}`);
      if (report.llama) parts.push(`llama.cpp driver: ${report.llama}`);
      if (report.torch) parts.push(`torch: ${report.torch}`);
      console.log(`setup: ok (${parts.join("; ")})`);
    }
    return 0;
  } catch (e) {
    console.error(`setup: ${e instanceof SetupError ? e.message : (e as Error)?.stack ?? e}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
