// GPU only (bench/gpu-check.sh step "standin"): the CUDA library's multi-rank training path on ONE
// GPU, through the NCCL stand-in (cuda/nccl-standin, found first through OLMO_CUDA_LIB_PATH; ranks
// share the GPU with OLMO_TEST_SHARE_GPU=1). DP=2, TP=2 and TP=2 × DP=2 of the tiny job train on
// CUDA and must follow the CUDA single-process run and the CPU library's run of the same layout
// (bf16 activations against fp32: the bounds are bf16's, not the CPU tests' 1e-5). Every loss is
// printed, so the report can quote them. Skipped (with the reason) without a usable GPU.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { cudaStatus } from "../support/native.ts";
import { type Metric, metrics, olmo, root, writeTinyJob } from "./run-compare.ts";

const cuda = cudaStatus();
const standin = join(root, "build/nccl-standin");
/** bf16 activations and gradients against fp32 over 6 Adam steps at lr 1e-2 */
const TOL = { loss: 1e-2, gradNorm: 5e-2 };

const LAYOUTS = [
  { name: "dp2", procs: "2", env: {} },
  { name: "tp2", procs: "2", env: { OLMO_TP: "2" } },
  { name: "tp2xdp2", procs: "4", env: { OLMO_TP: "2" } },
] as const;

let dir: string;
let cfgPath: string;
const cudaEnv = () => ({
  OLMO_CUDA_LIB_PATH: `${standin}${process.env.OLMO_CUDA_LIB_PATH ? `:${process.env.OLMO_CUDA_LIB_PATH}` : ""}`,
  OLMO_TEST_SHARE_GPU: "1",
  OLMO_NCCL_STANDIN_VERBOSE: "1",
});

function expectFollows(what: string, got: Metric[], want: Metric[]): void {
  expect(got.map((m) => m.step)).toEqual(want.map((m) => m.step));
  got.forEach((m, i) => {
    const w = want[i];
    expect({ what, step: m.step, lossOk: Math.abs(m.loss - w.loss) / w.loss < TOL.loss }).toEqual({ what, step: m.step, lossOk: true });
    expect({ what, step: m.step, gradOk: Math.abs(m.grad_norm - w.grad_norm) / w.grad_norm < TOL.gradNorm }).toEqual({ what, step: m.step, gradOk: true });
  });
}

const why = cuda !== true ? cuda : !existsSync(join(standin, "libnccl.so.2")) ? "build/nccl-standin/libnccl.so.2 missing (bun cuda/build.ts nccl-standin)" : null;
describe("multi-rank CUDA training on one GPU through the NCCL stand-in", () => {
  if (why) {
    test.skip(`DP=2, TP=2, TP=2 × DP=2 on CUDA vs CUDA one process and the CPU library: ${why}`, () => {});
    return;
  }
  beforeAll(() => ({ dir, cfgPath } = writeTinyJob("standin")));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const runs = new Map<string, Metric[]>();

  test("one process: CUDA and CPU", async () => {
    const [c, g] = await Promise.all([
      olmo(["train", cfgPath, "--run-dir", join(dir, "cpu1"), "--quiet"]),
      olmo(["train", cfgPath, "--run-dir", join(dir, "cuda1"), "--quiet", "--backend=cuda"], cudaEnv()),
    ]);
    expect([c.code, c.err, g.code, g.err]).toEqual([0, "", 0, ""]);
    runs.set("cpu1", metrics(join(dir, "cpu1")));
    runs.set("cuda1", metrics(join(dir, "cuda1")));
    expectFollows("cuda1 vs cpu1", runs.get("cuda1")!, runs.get("cpu1")!);
  }, 120_000);

  for (const l of LAYOUTS) {
    test(`${l.name}: CUDA ranks on one GPU follow CUDA one process and the CPU library's ${l.name}`, async () => {
      const launch = (name: string, extra: string[], env: Record<string, string>) =>
        olmo(["launch", "--nproc-per-node", l.procs, "--", "train", cfgPath, "--run-dir", join(dir, name), "--quiet", ...extra], { ...l.env, ...env });
      const c = await launch(`cpu-${l.name}`, [], {});
      const g = await launch(`cuda-${l.name}`, ["--backend=cuda"], cudaEnv());
      expect([c.code, c.err]).toEqual([0, ""]);
      expect({ code: g.code, tail: g.code ? (g.out + g.err).slice(-2000) : "" }).toEqual({ code: 0, tail: "" });
      // the stand-in, not a real NCCL, carried the collectives (one line per communicator of world > 1)
      expect(g.out + g.err).toContain("olmo NCCL stand-in: rank 0 of 2");
      const cpu = metrics(join(dir, `cpu-${l.name}`)), gpu = metrics(join(dir, `cuda-${l.name}`));
      runs.set(`cpu-${l.name}`, cpu);
      runs.set(`cuda-${l.name}`, gpu);
      console.log(JSON.stringify({ layout: l.name, steps: gpu.map((m, i) => ({ step: m.step, cuda: m.loss, cpu: cpu[i].loss, cuda1: runs.get("cuda1")![i].loss,
        cuda_grad_norm: m.grad_norm, cpu_grad_norm: cpu[i].grad_norm })) }));
      expectFollows(`cuda-${l.name} vs cpu-${l.name}`, gpu, cpu);
      expectFollows(`cuda-${l.name} vs cuda1`, gpu, runs.get("cuda1")!);
      expect(gpu[5].loss).toBeLessThan(gpu[0].loss);
    }, 180_000);
  }
});
