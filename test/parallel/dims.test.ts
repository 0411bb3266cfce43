import { expect, test } from "bun:test";
import { UserError } from "../../src/errors.ts";
import { parallelDims } from "../../src/parallel/dims.ts";

test("parallelDims: TP groups are consecutive ranks, DP groups share the TP rank", () => {
  expect(parallelDims(5, 8, 2)).toEqual({ world: 8, tp: 2, dp: 4, rank: 5, tpRank: 1, dpRank: 2, tpRanks: [4, 5], dpRanks: [1, 3, 5, 7] });
  expect(parallelDims(0, 1, 1)).toMatchObject({ tp: 1, dp: 1, tpRanks: [0], dpRanks: [0] });
  // 32B-style layout: 4 nodes × 8 GPUs, TP 8 inside each node, DP 4 across nodes
  expect(parallelDims(19, 32, 8, 8)).toMatchObject({ dp: 4, tpRank: 3, dpRank: 2, tpRanks: [16, 17, 18, 19, 20, 21, 22, 23], dpRanks: [3, 11, 19, 27] });
});

test("parallelDims: impossible layouts are user errors", () => {
  expect(() => parallelDims(0, 6, 4)).toThrow(UserError);
  expect(() => parallelDims(0, 6, 4)).toThrow("world size 6 is not divisible by tp=4");
  expect(() => parallelDims(0, 16, 16, 8)).toThrow("tp=16 does not divide the 8 ranks per node");
  expect(() => parallelDims(0, 4, 0)).toThrow("tp must be a positive integer");
});
