// lib/setup.ts: argument parsing and the checks it makes (installing is exercised by `deno task test` itself).

import assert from "node:assert/strict";
import {
  aptPackageInstalled,
  denoKernelStatus,
  ensureDenoKernel,
  ensureStableDeno,
  missingAptPackages,
  parseSetupArgs,
  SetupError,
  stableDenoPath,
} from "../lib/setup.ts";

Deno.test("setup flags: --with-notebooks implies --with-chromium; unknown flags are errors", () => {
  assert.deepEqual(parseSetupArgs([]), {
    quiet: false,
    notebooks: false,
    lab: false,
    webgpu: false,
    chromium: false,
    llama: false,
    torch: false,
  });
  assert.deepEqual(parseSetupArgs(["--quiet", "--with-notebooks"]), {
    quiet: true,
    notebooks: true,
    lab: false,
    webgpu: false,
    chromium: true,
    llama: false,
    torch: false,
  });
  assert.deepEqual(parseSetupArgs(["--with-lab"]), {
    quiet: false,
    notebooks: true,
    lab: true,
    webgpu: false,
    chromium: true,
    llama: false,
    torch: false,
  });
  assert.equal(parseSetupArgs(["--with-webgpu"]).webgpu, true);
  assert.equal(parseSetupArgs(["--with-llama"]).llama, true);
  assert.equal(parseSetupArgs(["--with-torch"]).torch, true);
  assert.throws(() => parseSetupArgs(["--with-notebook"]), SetupError);
});

Deno.test("setup sees installed and missing Debian packages", async () => {
  assert.equal(await aptPackageInstalled("dpkg"), true);
  assert.deepEqual(await missingAptPackages(["dpkg", "no-such-package-mambabyte"]), [
    "no-such-package-mambabyte",
  ]);
});

Deno.test("the Deno kernelspec points at the stable copy of the running Deno, and deno is on PATH", async () => {
  await ensureDenoKernel({ quiet: true });
  const s = await denoKernelStatus();
  assert.ok(s.current, `${s.path}: argv[0] = ${s.argv0}, stable copy ${stableDenoPath()}`);
  // the copy is a working Deno of the running version, outside any cache or clone
  const version = await new Deno.Command(stableDenoPath(), { args: ["--version"], stdout: "piped" }).output();
  assert.match(
    new TextDecoder().decode(version.stdout),
    new RegExp(`deno ${Deno.version.deno.replaceAll(".", "\\.")}`),
  );
  const stable = await ensureStableDeno({ quiet: true });
  assert.ok(stable.onPath, stable.note ?? "no deno on PATH");
  const which = await new Deno.Command("sh", { args: ["-c", "command -v deno"], stdout: "piped" }).output();
  assert.equal(new TextDecoder().decode(which.stdout).trim(), stable.onPath);
});
