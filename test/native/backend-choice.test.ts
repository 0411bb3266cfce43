// Backend selection rules that do not need a GPU to check: the OLMO_BACKEND value and the
// one-process-per-GPU rule (local rank r trains on GPU r).
import { expect, test } from "bun:test";
import { BackendChoiceError, createBackend, gpuForLocalRank } from "../../src/backend/native-backend.ts";

test("local rank r uses GPU r; more ranks than GPUs on a node is a one-line error", () => {
  expect(gpuForLocalRank(0, 1)).toBe(0);
  expect(gpuForLocalRank(7, 8)).toBe(7);
  expect(() => gpuForLocalRank(1, 1)).toThrow(BackendChoiceError);
  expect(() => gpuForLocalRank(1, 1)).toThrow("local rank 1 needs GPU 1, but this node has 1 usable GPU: start at most one rank per GPU");
  expect(() => gpuForLocalRank(8, 8)).toThrow("this node has 8 usable GPUs");
});

test("OLMO_BACKEND must be cpu, cuda or auto", () => {
  expect(() => createBackend("tpu")).toThrow("OLMO_BACKEND=tpu is not one of cpu, cuda, auto");
});
