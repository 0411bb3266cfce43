// In-loop eval under data and tensor parallelism (CPU library, shared-memory collectives): DP=2
// (instances dealt r::2, sums reduced), TP=2 (vocab-parallel loss) and TP=2 × DP=2 give one
// process's eval numbers on the same weights (step 0: initialization is the same at every layout),
// and eval leaves a DP run's training bitwise unchanged.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureNativeBuilt } from "../support/build.ts";
import { metrics, olmo, writeTinyJob } from "./run-compare.ts";

let dir: string, cfgPath: string;
const EOS = 250;
type Row = Record<string, number | string>;
const runs: Record<string, Row[]> = {};

beforeAll(async () => {
  ensureNativeBuilt("cpu");
  ({ dir, cfgPath } = writeTinyJob("evalpar"));
  // 7 windows of 16 (7 is odd: the DP ranks get 4 and 3) and documents of 19 tokens cut to 16, and of 3 to 7
  writeFileSync(join(dir, "eval.u32"), Uint32Array.from({ length: 16 * 7 + 3 }, (_, i) => (i % 19 === 18 || (i > 60 && i % 7 === 3) ? EOS : (i * 11 + (i >> 2)) % 240)));
  const sets = JSON.stringify([
    { name: "win", paths: [join(dir, "eval.u32")], instances: "windows" },
    { name: "doc", paths: [join(dir, "eval.u32")], instances: "documents", eosId: EOS },
  ]);
  const evalArgs = [`--eval.sets=${sets}`, "--eval.atStart=true", "--eval.everySteps=2"];
  const layouts: [string, string[], Record<string, string>, string[]][] = [
    ["one", ["train", cfgPath], {}, evalArgs],
    ["dp2", ["launch", "--nproc-per-node", "2", "--", "train", cfgPath], {}, evalArgs],
    ["dp2-plain", ["launch", "--nproc-per-node", "2", "--", "train", cfgPath], {}, []],
    ["tp2", ["launch", "--nproc-per-node", "2", "--", "train", cfgPath], { OLMO_TP: "2" }, evalArgs],
    ["tp2dp2", ["launch", "--nproc-per-node", "4", "--", "train", cfgPath], { OLMO_TP: "2" }, evalArgs],
  ];
  for (const [name, args, env, extra] of layouts) {
    const runDir = join(dir, name);
    const r = await olmo([...args, "--run-dir", runDir, "--quiet", "--train.steps=4", "--optim.maxGradNorm=0.5", ...extra], env);
    if (r.code !== 0) throw new Error(`${name}: exit ${r.code}\n${r.err}`);
    runs[name] = metrics(runDir) as unknown as Row[];
  }
  // multiple choice needs the real vocabulary (cl100k ids): the same job at vocab 100278, scored before its one step
  writeFileSync(join(dir, "task.jsonl"), ["France Paris", "Italy Rome", "Spain Madrid", "Peru Lima", "Chile Santiago"].map((_, i, all) =>
    JSON.stringify({ context: `The capital of ${all[i].split(" ")[0]} is`, choices: all.map((x) => ` ${x.split(" ")[1]}`), gold: i })).join("\n") + "\n");
  const mcArgs = ["--model.vocabSize=100278", "--train.steps=1", `--eval.tasks=[{"name":"capitals","path":"${join(dir, "task.jsonl")}"}]`, "--eval.atStart=true"];
  for (const [name, args, env] of [["mc-one", ["train", cfgPath], {}], ["mc-tp2dp2", ["launch", "--nproc-per-node", "4", "--", "train", cfgPath], { OLMO_TP: "2" }]] as const) {
    const runDir = join(dir, name);
    const r = await olmo([...args, "--run-dir", runDir, "--quiet", ...mcArgs], env);
    if (r.code !== 0) throw new Error(`${name}: exit ${r.code}\n${r.err}`);
    runs[name] = metrics(runDir) as unknown as Row[];
  }
}, 600_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const evals = (name: string, step: number) => runs[name].filter((r) => r.eval !== undefined && r.step === step);
const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

describe("in-loop eval under DP and TP", () => {
  for (const layout of ["dp2", "tp2", "tp2dp2"]) {
    test(`${layout}: the eval of the initial weights equals one process's (every set, CE, z-loss, tokens)`, () => {
      const mine = evals(layout, 0), one = evals("one", 0);
      expect(mine.map((r) => [r.eval, r.n_tokens, r.n_instances])).toEqual(one.map((r) => [r.eval, r.n_tokens, r.n_instances]));
      // DP: the same per-token losses, only the ranks' sums added in another order (measured: ≤ 4e-16).
      // TP: the vocab-parallel loss (max and Σ-exp combined across ranks, lse in double) against the
      // fused fp32 kernel: fp32 rounding of each token's loss (measured 1.6e-9 of the mean).
      const tol = layout === "dp2" ? { ce: 1e-12, z: 1e-12 } : { ce: 2e-8, z: 2e-8 };
      for (const [i, r] of mine.entries()) {
        expect({ set: r.eval, ce: rel(r.ce_loss as number, one[i].ce_loss as number) < tol.ce, z: rel(r.z_loss as number, one[i].z_loss as number) < tol.z })
          .toEqual({ set: r.eval, ce: true, z: true });
      }
      // and at every later evaluation to the closeness of their training runs
      for (const s of [2, 4]) for (const [i, r] of evals(layout, s).entries()) expect(rel(r.loss as number, evals("one", s)[i].loss as number)).toBeLessThan(1e-6);
    });
  }

  test("multiple choice under TP=2 × DP=2 (questions dealt over DP, vocab-parallel scores): one process's accuracies", () => {
    const acc = (name: string) => evals(name, 0).map((r) => [r.eval, r.n_questions, r.acc_raw, r.acc_per_token, r.acc_per_char, r.acc_uncond]);
    expect(acc("mc-one")).toHaveLength(1);
    expect(acc("mc-tp2dp2")).toEqual(acc("mc-one"));
  });

  test("eval does not change a DP=2 run: its loss and grad-norm curves are bitwise the run without eval", () => {
    const steps = (name: string) => runs[name].filter((r) => r.eval === undefined).map((r) => [r.step, r.loss, r.grad_norm]);
    expect(steps("dp2")).toEqual(steps("dp2-plain"));
    expect(evals("dp2", 4).length).toBe(2);
  });
});
