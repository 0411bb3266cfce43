// The dependency direction of docs/architecture.md, enforced by reading every import under src/:
//   cli → train → {model, data, optim, checkpoint, parallel} → backend → native
// config and tensor are leaves (config may read the model/optim schema files it validates);
// model sees no cli/train; optim may use parallel's Comm (ZeRO-1); data and checkpoint never
// import backend or native.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";

const src = resolve(import.meta.dir, "../src");

const allowed: Record<string, string[]> = {
  native: [],
  backend: ["native"],
  tensor: [],
  config: ["model/config.ts", "optim/schedule.ts"],
  model: ["backend", "tensor", "config", "parallel"],
  // ZeRO-1 shards the optimizer over data-parallel ranks: it needs the Comm interface
  optim: ["backend", "model", "tensor", "config", "parallel"],
  data: ["tensor", "config", "model/config.ts"],
  checkpoint: ["tensor", "config", "model", "data"],
  parallel: ["backend", "native", "tensor", "config"],
  train: ["backend", "model", "data", "optim", "checkpoint", "parallel", "tensor", "config"],
  cli: ["train", "backend", "model", "data", "optim", "checkpoint", "parallel", "tensor", "config", "native"],
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });
}

test("imports follow the module dependency direction", () => {
  const violations: string[] = [];
  for (const file of files(src)) {
    const rel = relative(src, file);
    const mod = rel.includes("/") ? rel.split("/")[0] : null;
    if (!mod) continue; // src/errors.ts: a leaf everyone may use
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*["']([^"']+)["']/g)) {
      const spec = m[1];
      if (spec === "bun:ffi" && mod !== "native") violations.push(`${rel}: bun:ffi outside src/native`);
      if (!spec.startsWith(".")) continue;
      const target = relative(src, resolve(file, "..", spec));
      if (target.startsWith("..")) continue;
      const tmod = target.includes("/") ? target.split("/")[0] : null;
      if (!tmod || tmod === mod) continue;
      const ok = (allowed[mod] ?? []).some((a) => a === tmod || a === target);
      if (!ok) violations.push(`${rel} imports ${target}`);
    }
  }
  expect(violations).toEqual([]);
});

const sources = () => files(src).map((f) => ({ rel: relative(src, f), text: readFileSync(f, "utf8") }));

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
