// ParamStore with a master slice (ZeRO-1): the rank keeps fp32 masters for its slice only, the
// compute copy is whole and separate (padded), fillEach sets both, refreshAct touches the slice only.
import { expect, test } from "bun:test";
import { ModelConfigSchema } from "../../src/model/config.ts";
import { ParamStore } from "../../src/model/param-store.ts";
import { paramSpecs, totalParams } from "../../src/model/params.ts";
import { openBackend } from "../helpers/native.ts";

const cfg = ModelConfigSchema.parse({ dModel: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnHidden: 32, vocabSize: 128, maxSeqLen: 16 });

test("a master slice keeps [start, start + len) in fp32, the whole arena in the compute copy", () => {
  const be = openBackend("cpu");
  const numel = totalParams(paramSpecs(cfg));
  const start = 1000, len = 777, padded = numel + 5;
  const store = new ParamStore(be, cfg, undefined, { masterSlice: { start, len, capacity: 800, actElements: padded } });
  expect(store.slicedMaster).toBe(true);
  expect(store.separateAct).toBe(true);
  const whole = Float32Array.from({ length: numel }, (_, i) => Math.sin(i) * 0.1);
  store.upload(whole);
  const act = new Float32Array(numel), master = new Float32Array(len);
  be.download(act, store.act);
  be.download(master, store.master);
  expect(act).toEqual(whole);
  expect(master).toEqual(whole.subarray(start, start + len));
  // refreshAct writes the slice's compute copy only
  be.fillF32(store.master, 7, len);
  be.fillF32(store.act, -1, numel);
  store.refreshAct();
  be.download(act, store.act);
  expect(Array.from(act.subarray(start, start + len)).every((v) => v === 7)).toBe(true);
  expect(act[start - 1]).toBe(-1);
  expect(act[start + len]).toBe(-1);
  store.free();
});

test("a slice outside the arena is refused", () => {
  const be = openBackend("cpu");
  const numel = totalParams(paramSpecs(cfg));
  expect(() => new ParamStore(be, cfg, undefined, { masterSlice: { start: numel - 10, len: 11, capacity: 11, actElements: numel } })).toThrow("bad master slice");
  expect(() => new ParamStore(be, cfg, undefined, { masterSlice: { start: 0, len: 10, capacity: 10, actElements: numel - 1 } })).toThrow("bad master slice");
});
