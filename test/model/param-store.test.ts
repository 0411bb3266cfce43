// ParamStore over a sharding map: under ZeRO-1 the rank keeps fp32 masters for its owned range only,
// the compute copy is whole and separate (padded), fillEach sets both, refreshAct touches the range
// only, and the gradient arena has the padded size whoever allocates it first.
import { expect, test } from "bun:test";
import { ModelConfigSchema } from "../../src/model/config.ts";
import { Olmo2 } from "../../src/model/olmo2.ts";
import { ParamStore } from "../../src/model/param-store.ts";
import { paramSpecs, totalParams } from "../../src/model/params.ts";
import { ShardingMap } from "../../src/model/sharding.ts";
import { openBackend } from "../support/native.ts";

const cfg = ModelConfigSchema.parse({ dModel: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnHidden: 32, vocabSize: 128, maxSeqLen: 16 });

test("ZeRO-1 rank 1 of 3 keeps [start, start + len) in fp32, the whole arena in the compute copy", () => {
  const be = openBackend("cpu");
  const numel = totalParams(paramSpecs(cfg));
  const map = new ShardingMap(cfg, { tp: 1, tpRank: 0, dp: 3, dpRank: 1 });
  const { start, len, S, padded } = map.zero1;
  expect([start, len, S, padded]).toEqual([Math.ceil(numel / 3), Math.ceil(numel / 3), Math.ceil(numel / 3), 3 * Math.ceil(numel / 3)]);
  const store = new ParamStore(be, cfg, map);
  expect(store.slicedMaster).toBe(true);
  expect(store.separateAct).toBe(true);
  const whole = Float32Array.from({ length: numel }, (_, i) => Math.sin(i) * 0.1);
  store.upload(whole);
  const act = new Float32Array(numel), master = new Float32Array(len);
  be.download(act, store.act);
  be.download(master, store.master);
  expect(act).toEqual(whole);
  expect(master).toEqual(whole.subarray(start, start + len));
  // refreshAct writes the range's compute copy only
  be.fillF32(store.master, 7, len);
  be.fillF32(store.act, -1, numel);
  store.refreshAct();
  be.download(act, store.act);
  expect(Array.from(act.subarray(start, start + len)).every((v) => v === 7)).toBe(true);
  expect(act[start - 1]).toBe(-1);
  expect(act[start + len]).toBe(-1);
  store.free();
});

test("one process: the degenerate map, masters and compute copy one buffer on the CPU library", () => {
  const be = openBackend("cpu");
  const store = new ParamStore(be, cfg);
  expect(store.slicedMaster).toBe(false);
  expect(store.separateAct).toBe(false);
  expect(store.map.zero1).toMatchObject({ start: 0, len: store.numel, S: store.numel, padded: store.numel });
  expect(store.gradElements).toBe(store.numel);
  store.free();
});

test("the gradient arena is padded for ZeRO-1 whether the model or the optimizer allocates it first", () => {
  const be = openBackend("cpu");
  const map = new ShardingMap(cfg, { tp: 1, tpRank: 0, dp: 5, dpRank: 4 }); // 6472 elements: 5 ranges of 1295, 3 of padding
  const store = new ParamStore(be, cfg, map);
  expect(store.grad).toBe(0);
  const model = new Olmo2(store, cfg, 1, 8, { training: true }); // allocates the gradients
  expect(store.grad).not.toBe(0);
  expect(store.gradElements).toBe(map.zero1.padded);
  expect(map.zero1.padded).toBeGreaterThan(store.numel);
  const before = store.grad;
  store.allocGrads(); // a second request keeps the arena
  expect(store.grad).toBe(before);
  // the padding is part of the arena: zeroGrads clears it (it travels through the reduce-scatter)
  be.fillF32(store.grad, 3, map.zero1.padded);
  store.zeroGrads();
  const g = new Float32Array(map.zero1.padded);
  be.download(g, store.grad);
  expect(g.every((x) => x === 0)).toBe(true);
  model.free();
  store.free();
});
