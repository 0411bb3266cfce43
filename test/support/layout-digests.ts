// Digests of the tiny job trained at 1 process, DP=2, TP=2 and TP=2 × DP=2 on the CPU library (6 steps,
// clipping active): the exact loss and grad-norm curves and an md5 of the final checkpoint's model,
// Adam m and Adam v arenas. The brief's rule "refactors keep the loss bitwise identical" is checked
// by running it before and after a change and comparing the two files:
//   bun test/support/layout-digests.ts /tmp/before.json   (on the old commit)
//   bun test/support/layout-digests.ts /tmp/after.json    (on the new one)
//   cmp /tmp/before.json /tmp/after.json
// Extra arguments are passed to every run as overrides (e.g. --optim.skipSteps=true).
import { createHash } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadCheckpoint } from "../../src/checkpoint/native/read.ts";
import { listCheckpoints } from "../../src/checkpoint/naming.ts";
import { metrics, olmo, writeTinyJob } from "../parallel/run-compare.ts";

const outFile = process.argv[2];
if (!outFile) {
  console.error("usage: bun test/support/layout-digests.ts OUT.json [--a.b=value ...]");
  process.exit(2);
}
const { dir, cfgPath } = writeTinyJob("digests");
const layouts: [string, string[], Record<string, string>][] = [
  ["one", ["train", cfgPath], {}],
  ["dp2", ["launch", "--nproc-per-node", "2", "--", "train", cfgPath], {}],
  ["tp2", ["launch", "--nproc-per-node", "2", "--", "train", cfgPath], { OLMO_TP: "2" }],
  ["tp2dp2", ["launch", "--nproc-per-node", "4", "--", "train", cfgPath], { OLMO_TP: "2" }],
];
const md5 = (a?: Float32Array) => (a ? createHash("md5").update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest("hex") : null);
const out: Record<string, unknown> = {};
for (const [name, args, env] of layouts) {
  const runDir = join(dir, name);
  const r = await olmo([...args, "--run-dir", runDir, "--quiet", "--optim.maxGradNorm=0.5", ...process.argv.slice(3)], env);
  if (r.code !== 0) throw new Error(`${name}: exit ${r.code}\n${r.err}`);
  const ck = loadCheckpoint(listCheckpoints(runDir).at(-1)!.path);
  const m = metrics(runDir);
  out[name] = { loss: m.map((x) => x.loss), gradNorm: m.map((x) => x.grad_norm), model: md5(ck.model), adamM: md5(ck.adamM), adamV: md5(ck.adamV) };
  console.log(name, JSON.stringify(out[name]));
}
writeFileSync(outFile, JSON.stringify(out, null, 1) + "\n");
rmSync(dir, { recursive: true, force: true });
