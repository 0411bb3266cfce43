// ParallelDims: how `world` ranks split into tensor-parallel (TP) and data-parallel (DP) groups.
// TP groups are blocks of consecutive ranks, so with one process per GPU and ranks numbered node by
// node a TP group stays inside a node (NVLink); DP groups are the ranks with the same TP rank.
//   world 8, tp 2: TP groups {0,1} {2,3} {4,5} {6,7}; DP groups {0,2,4,6} {1,3,5,7}
import { UserError } from "../errors.ts";

export interface ParallelDims {
  world: number;
  tp: number;
  dp: number;
  rank: number;
  tpRank: number;
  dpRank: number;
  /** global ranks of this rank's TP group, in TP-rank order */
  tpRanks: number[];
  /** global ranks of this rank's DP group, in DP-rank order */
  dpRanks: number[];
}

export function parallelDims(rank: number, world: number, tp: number, localWorld = world): ParallelDims {
  if (!Number.isInteger(tp) || tp < 1) throw new UserError(`parallel: tp must be a positive integer, got ${tp}`);
  if (world % tp !== 0) throw new UserError(`parallel: world size ${world} is not divisible by tp=${tp}`);
  if (localWorld % tp !== 0) {
    throw new UserError(`parallel: tp=${tp} does not divide the ${localWorld} ranks per node (tensor parallelism must stay inside a node)`);
  }
  const dp = world / tp;
  const tpRank = rank % tp, dpRank = Math.floor(rank / tp);
  return {
    world,
    tp,
    dp,
    rank,
    tpRank,
    dpRank,
    tpRanks: Array.from({ length: tp }, (_, i) => dpRank * tp + i),
    dpRanks: Array.from({ length: dp }, (_, i) => i * tp + tpRank),
  };
}
