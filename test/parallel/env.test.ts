import { describe, expect, test } from "bun:test";
import { UserError } from "../../src/errors.ts";
import { readRankEnv } from "../../src/parallel/env.ts";

describe("readRankEnv", () => {
  test("nothing set: one process", () => {
    expect(readRankEnv({})).toEqual({ rank: 0, world: 1, localRank: 0, localWorld: 1, masterAddr: "127.0.0.1", masterPort: 29500, source: "single" });
  });

  test("torchrun variables", () => {
    const e = readRankEnv({ RANK: "5", WORLD_SIZE: "8", LOCAL_RANK: "1", LOCAL_WORLD_SIZE: "4", MASTER_ADDR: "node0", MASTER_PORT: "1234" });
    expect(e).toEqual({ rank: 5, world: 8, localRank: 1, localWorld: 4, masterAddr: "node0", masterPort: 1234, source: "torchrun" });
    // LOCAL_* default to a single node
    expect(readRankEnv({ RANK: "1", WORLD_SIZE: "2", MASTER_ADDR: "h" })).toMatchObject({ localRank: 1, localWorld: 2, masterPort: 29500 });
  });

  test("SLURM variables, rendezvous at the launch node unless MASTER_ADDR is set", () => {
    const base = { SLURM_PROCID: "6", SLURM_NTASKS: "16", SLURM_LOCALID: "2", SLURM_NTASKS_PER_NODE: "8", SLURM_LAUNCH_NODE_IPADDR: "10.0.0.7" };
    expect(readRankEnv(base)).toEqual({ rank: 6, world: 16, localRank: 2, localWorld: 8, masterAddr: "10.0.0.7", masterPort: 29500, source: "slurm" });
    expect(readRankEnv({ ...base, MASTER_ADDR: "n0", MASTER_PORT: "7000" })).toMatchObject({ masterAddr: "n0", masterPort: 7000 });
    expect(readRankEnv({ ...base, SLURM_NTASKS_PER_NODE: undefined, SLURM_TASKS_PER_NODE: "8(x2)" }).localWorld).toBe(8);
  });

  test("torchrun variables win over SLURM ones (torchrun inside an allocation)", () => {
    const e = readRankEnv({ RANK: "1", WORLD_SIZE: "2", LOCAL_RANK: "1", MASTER_ADDR: "a", SLURM_PROCID: "0", SLURM_NTASKS: "1" });
    expect(e).toMatchObject({ rank: 1, world: 2, source: "torchrun" });
  });

  const bad: [string, Record<string, string>, RegExp][] = [
    ["RANK without WORLD_SIZE", { RANK: "0" }, /RANK is set but WORLD_SIZE is not/],
    ["WORLD_SIZE without RANK", { WORLD_SIZE: "2" }, /WORLD_SIZE is set but RANK is not/],
    ["rank beyond world", { RANK: "2", WORLD_SIZE: "2", MASTER_ADDR: "a" }, /RANK=2 is not below WORLD_SIZE=2/],
    ["not an integer", { RANK: "x", WORLD_SIZE: "2", MASTER_ADDR: "a" }, /RANK="x" is not a non-negative integer/],
    ["negative", { RANK: "-1", WORLD_SIZE: "2", MASTER_ADDR: "a" }, /RANK="-1"/],
    ["zero world", { RANK: "0", WORLD_SIZE: "0" }, /WORLD_SIZE=0 must be >= 1/],
    ["no master", { RANK: "0", WORLD_SIZE: "2" }, /MASTER_ADDR is not set/],
    ["local rank too big", { RANK: "3", WORLD_SIZE: "4", LOCAL_RANK: "2", LOCAL_WORLD_SIZE: "2", MASTER_ADDR: "a" }, /LOCAL_RANK=2 is not below LOCAL_WORLD_SIZE=2/],
    ["local world too big", { RANK: "0", WORLD_SIZE: "2", LOCAL_WORLD_SIZE: "4", MASTER_ADDR: "a" }, /LOCAL_WORLD_SIZE=4 exceeds WORLD_SIZE=2/],
    ["bad port", { RANK: "0", WORLD_SIZE: "2", MASTER_ADDR: "a", MASTER_PORT: "70000" }, /MASTER_PORT=70000 is not a TCP port/],
    ["SLURM without NTASKS", { SLURM_PROCID: "0" }, /SLURM_NTASKS is not/],
    ["SLURM procid beyond ntasks", { SLURM_PROCID: "4", SLURM_NTASKS: "4", SLURM_LAUNCH_NODE_IPADDR: "a" }, /SLURM_PROCID=4 is not below SLURM_NTASKS=4/],
    ["SLURM without an address", { SLURM_PROCID: "0", SLURM_NTASKS: "2" }, /neither MASTER_ADDR nor SLURM_LAUNCH_NODE_IPADDR/],
  ];
  for (const [name, env, msg] of bad) {
    test(`inconsistent: ${name} → UserError`, () => {
      expect(() => readRankEnv(env)).toThrow(UserError);
      expect(() => readRankEnv(env)).toThrow(msg);
    });
  }
});
