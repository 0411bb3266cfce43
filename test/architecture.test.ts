// The house rules of docs/architecture.md, enforced by reading every import under src/:
//   cli → recipe → train → {eval, metrics, model, data, optim, checkpoint, parallel} → backend → native
// - rooms (src/<room>/) import only the rooms (or files) listed for them below; the files at src/'s
//   root (errors, process, output-dir, progress, workers, input) are leaves every room may use;
// - inside checkpoint/, parallel/, data/ and train/, a sub-room (checkpoint/torch/, …) imports its
//   room's own root files and only the sub-rooms listed for it;
// - no import circles (type imports count: a circle of types is still two files that cannot be
//   read apart);
// - no second doors: no `export … from` and no re-export of an imported name, except in an
//   index.ts that something imports;
// - the Worker entry files are named only in src/workers.ts (the compiled binary needs the list);
// - only src/native imports bun:ffi; no instanceof on optimizer classes outside src/optim; what a
//   rank owns of a tensor is worked out only by the sharding map.
// Each rule is a function of the source text, so the tests below also run it on a planted violation.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const root = resolve(import.meta.dir, "..");
const src = join(root, "src");

type Source = { rel: string; text: string };

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });
}
const sources = (): Source[] => files(src).map((f) => ({ rel: relative(src, f), text: readFileSync(f, "utf8") }));

/** Every import (static, dynamic, type-only, side-effect) of a file: [specifier, target relative to src/ or null]. */
function importsOf(f: Source): { spec: string; target: string | null }[] {
  const out: { spec: string; target: string | null }[] = [];
  for (const m of f.text.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*["']([^"']+)["']/g)) {
    const spec = m[1];
    if (!spec.startsWith(".")) {
      out.push({ spec, target: null });
      continue;
    }
    const t = relative(src, resolve(src, dirname(f.rel), spec));
    out.push({ spec, target: t.startsWith("..") ? null : t });
  }
  return out;
}

const ROOMS: Record<string, string[]> = {
  native: [],
  backend: ["native"],
  tensor: [],
  // config validates the schema files of model and optim; nothing else
  config: ["model/config.ts", "optim/schedule.ts"],
  model: ["backend", "tensor", "parallel/comm"],
  // ZeRO-1 and TP norms need the collectives over backend pointers
  optim: ["backend", "model", "tensor", "parallel/comm"],
  // read-only memory maps of token files (Bun.mmap opens files read-write)
  data: ["tensor", "model/config.ts", "native/map-file.ts"],
  checkpoint: ["tensor", "model", "data"],
  parallel: ["backend", "native", "tensor"],
  eval: ["model", "data", "backend", "tensor", "config"],
  // what a run's numbers are and how they are drawn: no device, no model
  metrics: ["checkpoint/naming.ts"],
  train: ["eval", "metrics", "model", "data", "optim", "checkpoint", "parallel", "backend", "tensor", "config"],
  recipe: ["train", "eval", "metrics", "model", "data", "optim", "checkpoint", "backend", "tensor", "config"],
  cli: ["recipe", "train", "eval", "metrics", "model", "data", "optim", "checkpoint", "parallel", "backend", "native", "tensor", "config"],
};
const LEAVES = ["errors.ts", "process.ts", "output-dir.ts", "progress.ts", "workers.ts", "input.ts"];
/** sub-rooms and the other sub-rooms of their room they may use (a room's root files are always allowed) */
const SUB_ROOMS: Record<string, string[]> = {
  "checkpoint/torch": [], // PyTorch's containers, from their specs: no format of ours
  "checkpoint/native": [],
  "checkpoint/hf": [],
  "checkpoint/olmo-core": ["checkpoint/torch", "checkpoint/native"],
  "parallel/store": [],
  "parallel/comm": ["parallel/store/rendezvous.ts"], // store below comm
  "parallel/launch": [], // launch apart
  "data/brown": [],
  "train/checkpointing": [],
};

const roomOf = (rel: string) => (rel.includes("/") ? rel.split("/")[0] : null);
const subRoomOf = (rel: string) => Object.keys(SUB_ROOMS).find((s) => rel.startsWith(`${s}/`)) ?? null;
const within = (target: string, allowed: string) => target === allowed || target.startsWith(`${allowed}/`);

export function roomViolations(all: Source[]): string[] {
  const v: string[] = [];
  for (const f of all) {
    const mod = roomOf(f.rel);
    for (const { spec, target } of importsOf(f)) {
      if (spec === "bun:ffi" && mod !== "native") v.push(`${f.rel}: bun:ffi outside src/native`);
      if (target === null) continue;
      const tmod = roomOf(target);
      if (mod === null) {
        // a leaf imports only other leaves
        if (tmod !== null) v.push(`${f.rel} (a leaf) imports ${target}`);
        continue;
      }
      if (tmod === null) {
        if (!LEAVES.includes(target)) v.push(`${f.rel} imports ${target}, which is not a leaf`);
        continue;
      }
      if (tmod !== mod) {
        if (!ROOMS[mod]) v.push(`${f.rel}: src/${mod}/ is not a room of docs/architecture.md`);
        else if (!ROOMS[mod].some((a) => within(target, a))) v.push(`${f.rel} imports ${target} (${mod} may use ${ROOMS[mod].join(", ") || "nothing"})`);
        continue;
      }
      const sub = subRoomOf(f.rel), tsub = subRoomOf(target);
      if (sub === null || tsub === null || sub === tsub) continue;
      if (!SUB_ROOMS[sub].some((a) => within(target, a))) v.push(`${f.rel} imports ${target} (${sub}/ may use ${[`${mod}/*.ts`, ...SUB_ROOMS[sub]].join(", ")})`);
    }
  }
  return v;
}

/** Import circles between files (strongly connected components of more than one file, or a self-import). */
export function importCircles(all: Source[]): string[][] {
  const graph = new Map(all.map((f) => [f.rel, [...new Set(importsOf(f).map((i) => i.target).filter((t): t is string => t !== null && t.endsWith(".ts")))]]));
  let index = 0;
  const idx = new Map<string, number>(), low = new Map<string, number>(), stack: string[] = [], on = new Set<string>(), out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

/** `export … from`, or `export { x }` of an imported x, outside an index.ts that something imports. */
export function secondDoors(all: Source[]): string[] {
  const imported = new Set(all.flatMap((f) => importsOf(f).map((i) => i.target)));
  const v: string[] = [];
  for (const f of all) {
    const door = f.rel.endsWith("/index.ts");
    if (door && !imported.has(f.rel)) v.push(`${f.rel}: an index.ts nothing imports (a public API that is not one)`);
    if (door) continue;
    for (const m of f.text.matchAll(/^export\s+(?:type\s+)?(?:\*|\{[^}]*\})\s*from\s*["'][^"']+["']/gm)) v.push(`${f.rel}: ${m[0].split("\n")[0]}`);
    const importedNames = new Set([...f.text.matchAll(/^import\s+(?:type\s+)?\{([^}]*)\}\s*from/gm)]
      .flatMap((m) => m[1].split(",").map((n) => n.trim().replace(/^type\s+/, "").split(/\s+as\s+/).pop()!.trim()).filter(Boolean)));
    for (const m of f.text.matchAll(/^export\s+(?:type\s+)?\{([^}]*)\}\s*;?\s*$/gm)) {
      const names = m[1].split(",").map((n) => n.trim().replace(/^type\s+/, "").split(/\s+as\s+/)[0].trim()).filter(Boolean);
      for (const n of names) if (importedNames.has(n)) v.push(`${f.rel}: re-exports ${n}`);
    }
  }
  return v;
}

/** Worker entry files (a `declare const self: Worker`) are named only in src/workers.ts, and every one is named there. */
export function workerNaming(all: Source[], workers: Record<string, string>): string[] {
  const v: string[] = [];
  const entries = all.filter((f) => /declare\s+const\s+self\s*:\s*Worker/.test(f.text)).map((f) => `src/${f.rel}`);
  const named = Object.values(workers);
  for (const e of entries) if (!named.includes(e)) v.push(`${e} is a Worker entry file that src/workers.ts does not name`);
  for (const n of named) if (!entries.includes(n)) v.push(`src/workers.ts names ${n}, which is not a Worker entry file`);
  for (const f of all) {
    if (f.rel === "workers.ts") continue;
    for (const e of entries) {
      const base = e.split("/").pop()!;
      if (f.text.includes(base)) v.push(`${f.rel} names the Worker entry ${base} (only src/workers.ts may)`);
    }
    if (/new\s+Worker\s*\(\s*(?:new\s+URL\s*\(\s*)?["'`]/.test(f.text)) v.push(`${f.rel} starts a Worker from a literal path (use workerUrls)`);
  }
  return v;
}

describe("the house rules hold for src/", () => {
  const all = sources();
  test("imports follow the rooms' dependency rule", () => {
    expect(roomViolations(all)).toEqual([]);
  });
  test("no import circles", () => {
    expect(importCircles(all)).toEqual([]);
  });
  test("no second doors", () => {
    expect(secondDoors(all)).toEqual([]);
  });
  test("Worker entry files are named once, in src/workers.ts", async () => {
    const { WORKER_FILES } = await import("../src/workers.ts");
    for (const p of Object.values(WORKER_FILES)) expect(existsSync(join(root, p))).toBe(true);
    expect(workerNaming(all, WORKER_FILES)).toEqual([]);
  });
  test("every room of src/ is a room of the rule", () => {
    const dirs = readdirSync(src).filter((d) => statSync(join(src, d)).isDirectory());
    expect(dirs.filter((d) => !ROOMS[d])).toEqual([]);
    const leaves = readdirSync(src).filter((d) => d.endsWith(".ts"));
    expect(leaves.sort()).toEqual([...LEAVES].sort());
  });
});

describe("each rule fails on a planted violation", () => {
  const all = sources();
  const plant = (rel: string, text: string) => [...all.filter((f) => f.rel !== rel), { rel, text: (all.find((f) => f.rel === rel)?.text ?? "") + `\n${text}\n` }];
  test("a cross-room import (metrics → train) and a sub-room import (checkpoint/torch → checkpoint/native)", () => {
    expect(roomViolations(plant("metrics/report.ts", `import { Trainer } from "../train/trainer.ts";`))).toEqual([
      expect.stringContaining("metrics/report.ts imports train/trainer.ts"),
    ]);
    expect(roomViolations(plant("checkpoint/torch/zip.ts", `import type { Group } from "../native/format.ts";`))).toEqual([
      expect.stringContaining("checkpoint/torch/zip.ts imports checkpoint/native/format.ts"),
    ]);
    expect(roomViolations(plant("model/activations.ts", `import type { RunConfig } from "../config/schema.ts";`))).toEqual([
      expect.stringContaining("model/activations.ts imports config/schema.ts"),
    ]);
  });
  test("a circle (metrics/records.ts → metrics/tensorboard-tags.ts, which imports records.ts)", () => {
    expect(importCircles(plant("metrics/records.ts", `import type { Scalar } from "./tensorboard-tags.ts";`))).toEqual([["metrics/records.ts", "metrics/tensorboard-tags.ts"]]);
  });
  test("a second door (export … from, and a re-export of an imported name)", () => {
    expect(secondDoors(plant("checkpoint/io.ts", `export { checkFreshOutDir } from "../output-dir.ts";`))).toEqual([expect.stringContaining("checkpoint/io.ts: export { checkFreshOutDir }")]);
    expect(secondDoors(plant("train/run.ts", "export { PREEMPTED_EXIT_CODE };"))).toEqual(["train/run.ts: re-exports PREEMPTED_EXIT_CODE"]);
  });
  test("a Worker entry file named outside src/workers.ts", async () => {
    const { WORKER_FILES } = await import("../src/workers.ts");
    expect(workerNaming(plant("train/checkpointing/async-save.ts", `const w = new Worker("./save-worker.ts");`), WORKER_FILES)).toEqual([
      "train/checkpointing/async-save.ts names the Worker entry save-worker.ts (only src/workers.ts may)",
      "train/checkpointing/async-save.ts starts a Worker from a literal path (use workerUrls)",
    ]);
  });
});

test("no instanceof on optimizer classes outside src/optim (one optimizer serves every layout)", () => {
  const optimClasses = new Set(sources().filter((f) => f.rel.startsWith("optim/"))
    .flatMap((f) => [...f.text.matchAll(/export\s+class\s+(\w+)/g)].map((m) => m[1])));
  expect(optimClasses.has("AdamW")).toBe(true);
  const violations = sources().filter((f) => !f.rel.startsWith("optim/"))
    .flatMap((f) => [...f.text.matchAll(/instanceof\s+(\w+)/g)].filter((m) => optimClasses.has(m[1])).map((m) => `${f.rel}: instanceof ${m[1]}`));
  expect(violations).toEqual([]);
});

test("what a rank owns of a tensor is worked out only by the sharding map (src/model/sharding.ts)", () => {
  const internals = ["tpShards", "zero1Range", "shardRegions", "readShardRange"];
  const violations = sources().filter((f) => f.rel !== "model/sharding.ts")
    .flatMap((f) => internals.filter((fn) => new RegExp(`\\b${fn}\\s*\\(`).test(f.text)).map((fn) => `${f.rel} calls ${fn}`));
  expect(violations).toEqual([]);
});
