/**
 * The house's floors (docs/DESIGN.md): every import in lib/ points down, never up and never in a circle,
 * type-only and dynamic imports included. The rules are data (FLOORS below); `checkImports` applies them to
 * a set of files, so the tests can show it catching a planted circle and a planted upward import as well as
 * passing the real tree.
 */
import assert from "node:assert/strict";

/**
 * Rooms from the top floor down: a file may import files of its own room, and files of rooms on lower
 * floors. Rooms on one floor do not import each other, except on the top floor (the entry points) and the
 * ground floor (data, results, io, util and the root's small modules), where only circles are forbidden.
 * First matching prefix wins.
 */
export const FLOORS: { floor: number; rooms: string[] }[] = [
  {
    floor: 9,
    rooms: ["lib/cli.ts", "lib/reproduce.ts", "lib/setup.ts", "lib/mod.ts", "lib/bench/", "lib/notebook/"],
  },
  { floor: 8, rooms: ["lib/runs/"] },
  { floor: 7, rooms: ["lib/plot/", "lib/eval/"] },
  { floor: 6, rooms: ["lib/decode/"] },
  { floor: 5, rooms: ["lib/train/"] },
  { floor: 4, rooms: ["lib/engine/"] },
  { floor: 3, rooms: ["lib/models/"] },
  { floor: 2, rooms: ["lib/nn/", "lib/ssm/"] },
  { floor: 1, rooms: ["lib/kernels/"] },
  {
    floor: 0,
    rooms: [
      "lib/backend.ts",
      "lib/paths.ts",
      "lib/scales.ts",
      "lib/data/",
      "lib/results/",
      "lib/io/",
      "lib/util/",
    ],
  },
];

/** The engine reads configs and checkpoint naming from models/, and nothing else of it (DESIGN.md). */
const ENGINE_MAY_READ_FROM_MODELS = [
  "lib/models/mamba_config.ts",
  "lib/models/transformer_config.ts",
  "lib/models/megabyte_config.ts",
  "lib/models/checkpoint.ts",
];

function roomOf(path: string): { floor: number; room: string } | undefined {
  for (const { floor, rooms } of FLOORS) {
    for (const room of rooms) {
      if (path === room || (room.endsWith("/") && path.startsWith(room))) return { floor, room };
    }
  }
  return undefined;
}

/** Relative specifiers of every import of a source: static, re-export, side-effect, type-only, dynamic. */
export function importSpecifiers(source: string): string[] {
  // comments out first, so an example in a doc comment is not an import
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const out: string[] = [];
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) out.push(m[1]);
  return out.filter((s) => s.startsWith("."));
}

function resolve(from: string, spec: string): string {
  const parts = from.split("/").slice(0, -1);
  for (const p of spec.split("/")) {
    if (p === "..") parts.pop();
    else if (p !== ".") parts.push(p);
  }
  return parts.join("/");
}

/** Every rule broken by `files` (repo-relative path -> source): one line each, empty when the house is sound. */
export function checkImports(files: Map<string, string>): string[] {
  const problems: string[] = [];
  const edges = new Map<string, string[]>();
  for (const [path, source] of files) {
    const from = roomOf(path);
    if (!from) {
      problems.push(`${path}: in no room of the import rules (add its room to FLOORS and docs/DESIGN.md)`);
      continue;
    }
    const targets: string[] = [];
    for (const spec of importSpecifiers(source)) {
      const target = resolve(path, spec);
      if (!target.startsWith("lib/")) continue; // tests, fixtures, data read as modules
      targets.push(target);
      const to = roomOf(target);
      if (!to) {
        problems.push(`${path} imports ${target}, which is in no room of the import rules`);
        continue;
      }
      if (to.room === from.room) continue;
      if (
        from.room === "lib/engine/" && to.room === "lib/models/" &&
        !ENGINE_MAY_READ_FROM_MODELS.includes(target)
      ) {
        problems.push(
          `${path} imports ${target}: the engine reads only configs and checkpoint naming from models/`,
        );
        continue;
      }
      const sidewaysAllowed = from.floor === 0 || from.floor === FLOORS[0].floor;
      if (to.floor > from.floor || (to.floor === from.floor && !sidewaysAllowed)) {
        problems.push(
          `${path} (floor ${from.floor}, ${from.room}) imports ${target} (floor ${to.floor}, ${to.room}): ` +
            (to.floor > from.floor ? "an upward import" : "a sideways import"),
        );
      }
    }
    edges.set(path, targets);
  }
  problems.push(...circles(edges).map((c) => `import circle: ${c.join(" -> ")}`));
  return problems;
}

/** The import circles of a graph (Tarjan's strongly connected components), each as a closed path. */
function circles(edges: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>(), low = new Map<string, number>(), onStack = new Set<string>();
  const stack: string[] = [], out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!edges.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (edges.get(v) ?? []).includes(v)) out.push(pathThrough(component, edges));
    }
  };
  for (const v of edges.keys()) if (!idx.has(v)) visit(v);
  return out;
}

/** One closed path through a strongly connected component, for the message. */
function pathThrough(component: string[], edges: Map<string, string[]>): string[] {
  const inside = new Set(component);
  const start = component.sort()[0];
  const path = [start];
  const seen = new Set([start]);
  let v = start;
  for (;;) {
    const next = (edges.get(v) ?? []).filter((w) => inside.has(w));
    const back = next.find((w) => w === start);
    const fresh = next.find((w) => !seen.has(w));
    if (back && (!fresh || path.length > 1)) return [...path, start];
    if (!fresh) return [...path, next[0] ?? start];
    path.push(fresh);
    seen.add(fresh);
    v = fresh;
  }
}

async function libSources(): Promise<Map<string, string>> {
  const root = decodeURIComponent(new URL("../", import.meta.url).pathname);
  const files = new Map<string, string>();
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(`${root}${dir}`)) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (e.name.endsWith(".ts")) files.set(path, await Deno.readTextFile(`${root}${path}`));
    }
  };
  await walk("lib");
  return files;
}

Deno.test("imports in lib/ point down the floors of docs/DESIGN.md, in no circle", async () => {
  const files = await libSources();
  assert.ok(files.size > 50, `found only ${files.size} files under lib/`);
  const problems = checkImports(files);
  assert.deepEqual(problems, [], problems.join("\n"));
});

Deno.test("the import check catches a planted circle, an upward, a sideways and a type-only upward import", async () => {
  const files = await libSources();
  const plant = (path: string, line: string) => {
    const planted = new Map(files);
    planted.set(path, `${line}\n${files.get(path)}`);
    return checkImports(planted);
  };
  // a circle inside one room (each import allowed on its own): results/records.ts <-> results/store.ts
  const circle = new Map(files);
  for (
    const [path, line] of [
      ["lib/results/records.ts", `import { appendRecord } from "./store.ts";`],
      ["lib/results/store.ts", `import type { RunRecord } from "./records.ts";`],
    ]
  ) circle.set(path, `${line}\n${files.get(path)}`);
  const circled = checkImports(circle);
  assert.ok(
    circled.some((p) => p.startsWith("import circle:") && p.includes("lib/results/store.ts")),
    circled.join("\n"),
  );
  // upward: a model importing the trainer
  const up = plant("lib/models/mamba.ts", `import { train } from "../train/trainer.ts";`);
  assert.ok(
    up.some((p) => p.includes("lib/models/mamba.ts") && p.includes("an upward import")),
    up.join("\n"),
  );
  // type-only upward: results importing a type from runs
  const typeUp = plant("lib/results/records.ts", `import type { RunSpec } from "../runs/experiment.ts";`);
  assert.ok(typeUp.some((p) => p.includes("an upward import")), typeUp.join("\n"));
  // dynamic upward
  const dyn = plant("lib/eval/score.ts", `const m = await import("../runs/plan.ts");`);
  assert.ok(
    dyn.some((p) => p.includes("lib/eval/score.ts") && p.includes("an upward import")),
    dyn.join("\n"),
  );
  // sideways: plot importing eval (one floor)
  const side = plant("lib/plot/figures/decode.ts", `import { scoreText } from "../../eval/score.ts";`);
  assert.ok(side.some((p) => p.includes("a sideways import")), side.join("\n"));
  // upward across the floors of scoring and decoding: decode importing eval
  const decodeUp = plant("lib/decode/sample.ts", `import { scoreText } from "../eval/score.ts";`);
  assert.ok(decodeUp.some((p) => p.includes("lib/decode/sample.ts") && p.includes("an upward import")));
  // the engine reading the TF.js model instead of its config
  const engine = new Map(files);
  engine.set(
    "lib/engine/planted.ts",
    `import { forward } from "../models/mamba.ts";\nimport { dInner } from "../models/mamba_config.ts";`,
  );
  assert.deepEqual(checkImports(engine), [
    "lib/engine/planted.ts imports lib/models/mamba.ts: the engine reads only configs and checkpoint naming from models/",
  ]);
  // a doc comment mentioning an import is not one
  const comment = plant("lib/models/mamba.ts", `/** e.g. import { train } from "../train/trainer.ts"; */`);
  assert.deepEqual(comment, []);
});
