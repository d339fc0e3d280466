/** The sources are formatted (`deno fmt --check`) and lint-clean (`deno lint`), as deno.json configures both. */
import assert from "node:assert/strict";
import { REPO_ROOT } from "../lib/paths.ts";

async function deno(args: string[]): Promise<{ code: number; output: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, output: text };
}

Deno.test("deno fmt --check: every source is formatted", async () => {
  const r = await deno(["fmt", "--check"]);
  const files = [...r.output.matchAll(/^from (\S+):$/gm)].map((m) => m[1].replace(REPO_ROOT, ""));
  assert.equal(r.code, 0, `not formatted (run deno fmt): ${files.join(", ") || r.output.slice(-2000)}`);
});

Deno.test("deno lint: no problem", async () => {
  const r = await deno(["lint"]);
  assert.equal(r.code, 0, r.output.slice(-4000));
});
