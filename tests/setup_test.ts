// lib/setup.ts: argument parsing and the checks it makes (installing is exercised by `deno task test` itself).

import assert from "node:assert/strict";
import {
  aptPackageInstalled,
  denoKernelStatus,
  ensureDenoKernel,
  missingAptPackages,
  parseSetupArgs,
  SetupError,
} from "../lib/setup.ts";

Deno.test("setup flags: --with-notebooks implies --with-chromium; unknown flags are errors", () => {
  assert.deepEqual(parseSetupArgs([]), { quiet: false, notebooks: false, webgpu: false, chromium: false });
  assert.deepEqual(parseSetupArgs(["--quiet", "--with-notebooks"]), {
    quiet: true,
    notebooks: true,
    webgpu: false,
    chromium: true,
  });
  assert.equal(parseSetupArgs(["--with-webgpu"]).webgpu, true);
  assert.throws(() => parseSetupArgs(["--with-notebook"]), SetupError);
});

Deno.test("setup sees installed and missing Debian packages", async () => {
  assert.equal(await aptPackageInstalled("dpkg"), true);
  assert.deepEqual(await missingAptPackages(["dpkg", "no-such-package-mambabyte"]), [
    "no-such-package-mambabyte",
  ]);
});

Deno.test("the Deno kernelspec points at the Deno running now", async () => {
  await ensureDenoKernel({ quiet: true });
  const s = await denoKernelStatus();
  assert.ok(s.current, `${s.path}: argv[0] = ${s.argv0}, running ${Deno.execPath()}`);
});
