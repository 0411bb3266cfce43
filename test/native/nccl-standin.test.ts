// The one-GPU NCCL stand-in (cuda/nccl-standin, a test tool): its collectives run here on the CPU
// (built with host memcpy in place of the device copies) across 2–4 forked ranks with tiny slots, so
// every size crosses chunk boundaries, and must equal the sequential rank-order result bit for bit
// (cuda/nccl-standin/selftest.c); a mismatched call fails on every rank. Where nvcc exists, the real
// build (static cudart) must export every NCCL symbol that cuda/gpu/vendor.cu resolves.
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { gpuForLocalRank } from "../../src/backend/native-backend.ts";

const root = resolve(import.meta.dir, "../..");
const dir = join(root, "build/test");
const exe = join(dir, "nccl-standin-selftest");

beforeAll(() => {
  mkdirSync(dir, { recursive: true });
  const cc = Bun.which("cc") ?? Bun.which("gcc");
  if (!cc) throw new Error("no C compiler");
  const p = Bun.spawnSync([cc, "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-DOLMO_NCCL_STANDIN_HOST_COPY", "-o", exe,
    "cuda/nccl-standin/selftest.c", "cuda/nccl-standin/nccl_standin.c", "-lm"], { cwd: root, stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(p.stderr.toString());
});

describe("NCCL stand-in (host copies, forked ranks)", () => {
  test("OLMO_TEST_SHARE_GPU: local ranks share the GPUs round robin (only then; otherwise one rank per GPU)", () => {
    expect([0, 1, 2, 3].map((r) => gpuForLocalRank(r, 1, true))).toEqual([0, 0, 0, 0]);
    expect([0, 1, 2, 3].map((r) => gpuForLocalRank(r, 2, true))).toEqual([0, 1, 0, 1]);
    expect(() => gpuForLocalRank(1, 1)).toThrow("start at most one rank per GPU");
  });

  for (const W of [2, 3, 4]) {
    test(`${W} ranks: every collective, dtype, reduction and size bitwise equal to the rank-order reduction`, () => {
      const p = Bun.spawnSync([exe, String(W)], {
        env: { ...process.env, OLMO_NCCL_STANDIN_SLOT_BYTES: "128", OLMO_NCCL_STANDIN_TIMEOUT_S: "30" }, stdout: "pipe", stderr: "pipe",
      });
      const err = p.stderr.toString();
      expect({ code: p.exitCode, out: p.stdout.toString().trim() }).toMatchObject({ code: 0, out: expect.stringMatching(new RegExp(`^ok W=${W} checks=\\d+$`)) });
      // the deliberate mismatch is reported once per rank, naming both calls
      expect(err.trim().split("\n")).toHaveLength(W);
      expect(err).toContain("called AllReduce(count 3, dtype 7, op 0, root 0) while rank");
    }, 60_000);
  }

  test("its enum values are vendor.h's (which bench/gpu/vendor_check.cpp checks against the real nccl.h)", () => {
    const vendor = readFileSync(join(root, "cuda/gpu/vendor.h"), "utf8"), standin = readFileSync(join(root, "cuda/nccl-standin/nccl_standin.c"), "utf8");
    const def = (name: string) => Number(new RegExp(`#define OLMO_NCCL_${name} (\\d+)`).exec(vendor)![1]);
    const en = (name: string) => Number(new RegExp(`\\b${name} = (\\d+)`).exec(standin)![1]);
    const pairs: [string, string][] = [["SUCCESS", "ncclSuccess"], ["FLOAT32", "ncclFloat32"], ["BFLOAT16", "ncclBfloat16"], ["SUM", "ncclSum"], ["MAX", "ncclMax"], ["AVG", "ncclAvg"]];
    for (const [v, n] of pairs) expect({ n, value: en(n) }).toEqual({ n, value: def(v) });
    expect(Number(/#define ID_BYTES (\d+)/.exec(standin)![1])).toBe(def("UNIQUE_ID_BYTES"));
  });

  const nvcc = Bun.which("nvcc") ?? (existsSync("/usr/local/cuda/bin/nvcc") ? "/usr/local/cuda/bin/nvcc" : null);
  (nvcc ? test : test.skip)("bun cuda/build.ts nccl-standin builds libnccl.so.2 exporting every symbol vendor.cu resolves", () => {
    const b = Bun.spawnSync([process.execPath, "cuda/build.ts", "nccl-standin"], { cwd: root, stderr: "pipe" });
    expect(b.exitCode).toBe(0);
    const lib = join(root, "build/nccl-standin/libnccl.so.2");
    const nm = Bun.spawnSync(["nm", "-D", "--defined-only", lib], { stdout: "pipe" }).stdout.toString();
    const exported = new Set([...nm.matchAll(/ T (\w+)$/gm)].map((m) => m[1]));
    const wanted = [...readFileSync(join(root, "cuda/gpu/vendor.cu"), "utf8").matchAll(/OLMO_SYM\(g_nccl, \w+, "(\w+)"\)/g)].map((m) => m[1]);
    expect(wanted.length).toBeGreaterThanOrEqual(8);
    for (const s of wanted) expect({ s, exported: exported.has(s) }).toEqual({ s, exported: true });
    // a test tool: only the NCCL API is visible (the static CUDA runtime stays hidden)
    expect([...exported].every((s) => s.startsWith("nccl"))).toBe(true);
  }, 120_000);
});
