import { describe, expect, test } from "bun:test";
import { type ReduceOp, SingleComm, hostPtrComm, reduceInto } from "../../../src/parallel/comm/comm.ts";
import { initParallel } from "../../../src/parallel/init.ts";

describe("host collectives (in process)", () => {
  test("reduceInto combines in rank order with f32 rounding after each step", () => {
    const xs = [new Float32Array([1e8, 1, 3, -0]), new Float32Array([1, 1e8, 5, 0]), new Float32Array([-1e8, -1e8, 4, -0])];
    const out = new Float32Array(4);
    reduceInto(out, 0, xs, 0, 4, "sum");
    // ((1e8 + 1) + -1e8) = 0 in f32; ((1 + 1e8) + -1e8) = 0 too; 3 + 5 + 4 = 12
    expect(Array.from(out)).toEqual([0, 0, 12, 0]);
    reduceInto(out, 0, xs, 2, 2, "max");
    expect(Array.from(out.subarray(0, 2))).toEqual([5, 0]);
    reduceInto(out, 1, xs, 2, 1, "avg");
    expect(out[1]).toBe(4);
    const one = new Float32Array(2);
    reduceInto(one, 0, [new Float32Array([7, 8])], 0, 2, "sum" as ReduceOp);
    expect(Array.from(one)).toEqual([7, 8]);
  });

  test("world 1: SingleComm, no store, identity collectives", async () => {
    const par = await initParallel({ env: { rank: 0, world: 1, localRank: 0, localWorld: 1, masterAddr: "127.0.0.1", masterPort: 1, source: "single" } });
    expect(par.store).toBeNull();
    const c = par.comm!;
    expect(c).toBeInstanceOf(SingleComm);
    const b = new Float32Array([1, 2, 3]);
    c.allReduce(b, "avg");
    c.broadcast(b, 0);
    expect(Array.from(b)).toEqual([1, 2, 3]);
    const r = new Float32Array(3);
    c.allGather(b, r);
    expect(Array.from(r)).toEqual([1, 2, 3]);
    c.reduceScatter(b, r, "sum");
    expect(Array.from(r)).toEqual([1, 2, 3]);
    expect(() => c.allGather(b, new Float32Array(4))).toThrow("allGather: recv.length 4 != world 1 × send.length 3");
    expect(() => c.broadcast(b, 1)).toThrow("root 1 is not a rank of world 1");
    await par.close();
  });

  test("hostPtrComm maps pointer collectives onto a host Comm (the CPU library's plan)", () => {
    // fake "device memory": pointers are offsets into one host buffer, as the CPU library's are addresses
    const mem = new Float32Array(64);
    const view = (p: number, n: number) => mem.subarray(p / 4, p / 4 + n);
    const pc = hostPtrComm(new SingleComm(), view);
    mem.set([1, 2, 3], 0);
    pc.allReduce(64, 0, 3, "f32", "sum"); // out of place: recv at byte 64
    expect(Array.from(mem.subarray(16, 19))).toEqual([1, 2, 3]);
    pc.allGather(128, 0, 3, "f32");
    expect(Array.from(mem.subarray(32, 35))).toEqual([1, 2, 3]);
    expect(() => pc.broadcast(0, 3, "bf16", 0)).toThrow("f32 only");
  });
});

describe("NcclComm", () => {
  test("with the CPU library it fails with the library's message (NCCL lives in the CUDA library; not testable without GPUs)", async () => {
    const { loadNative } = await import("../../../src/native/lib.ts");
    const { NcclComm } = await import("../../../src/parallel/comm/nccl-comm.ts");
    await expect(NcclComm.create(loadNative("cpu"), null, 0, 1)).rejects.toThrow("collectives are not in the CPU library");
  });
});
