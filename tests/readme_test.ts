/**
 * The README's notebook example runs as written: the ```ts block under "Use it from a notebook" is
 * executed (its import pointed at lib/mod.ts from a scratch folder) and must train, score and generate.
 */
import assert from "node:assert/strict";
import { REPO_ROOT } from "../lib/paths.ts";

Deno.test("README: the 'Use it from a notebook' example runs as written", async () => {
  const readme = await Deno.readTextFile(`${REPO_ROOT}README.md`);
  const section = readme.slice(readme.indexOf("### Use it from a notebook"));
  const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(block, "no ```ts block under 'Use it from a notebook'");
  assert.match(block, /from "\.\.\/lib\/mod\.ts"/, "the example imports lib/mod.ts as a notebook does");
  // a notebook's cwd is notebooks/; run it from a folder at the same depth
  await Deno.mkdir(`${REPO_ROOT}data/tmp`, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: `${REPO_ROOT}data/tmp`, prefix: "readme-" });
  try {
    const script = `${dir}/example.ts`;
    await Deno.writeTextFile(
      script,
      block.replace('"../lib/mod.ts"', JSON.stringify(`${REPO_ROOT}lib/mod.ts`)),
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script],
      cwd: dir,
      env: { NO_COLOR: "1", MAMBABYTE_BACKEND: "wasm" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout), stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    const r = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}");
    assert.ok(
      r.trainBitsPerByte < 8 && r.testBitsPerByte < 8,
      `a trained model beats 8 bits per byte: ${stdout}`,
    );
    assert.equal(typeof r.sample, "string");
    assert.ok(new TextEncoder().encode(r.sample).length > 0, "some text generated");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
