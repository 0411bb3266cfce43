// OLMo-core's cached global-indices files are read when they check out, ours never take their name.
import { expect, test } from "bun:test";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DataLoader, globalOrder, openDataset } from "../../src/data/index.ts";
import { orderTail } from "../../src/data/order-cache.ts";
import { patterned, tempDir, writeTokens } from "./helpers.ts";

const dir = tempDir();
const paths = [160, 100, 15, 199, 320].map((n, f) => writeTokens(dir, `part-${f}.npy`, patterned(f, n)));
const ds = openDataset({ paths, seqLen: 16, vocabSize: 100278 }); // 48 instances
const chunked = openDataset({ paths, seqLen: 8, maxTargetSeqLen: 16, vocabSize: 100278 }); // chunk 2

test("orderTail gives the last entries of the full shuffle", () => {
  for (const [n, from] of [[49, 40], [49, 0], [1000, 990], [2, 1]]) {
    expect(Array.from(orderTail(n, 7, 1, from))).toEqual(Array.from(globalOrder(n, 7, 1).subarray(from)));
  }
});

for (const [label, d, name, full] of [
  ["d7301e62 name (tail dropped)", ds, "global_indices_epoch1_seed3_size48.npy", false],
  ["current name (whole order)", ds, "global_indices_dataset_size48_epoch1_seed3_v1.npy", true],
  ["chunked, d7301e62 name", chunked, "global_indices_chunk2_epoch1_seed3_size96.npy", false],
] as const) {
  test(`an OLMo-core work_dir's order file is used: ${label}`, () => {
    const cache = tempDir("olmo-oc-order-");
    const fresh = new DataLoader(d, { globalBatchTokens: 128, seed: 3 });
    const order = globalOrder(d.numInstances, 3, 1, d.chunk);
    const file = full ? order.slice() : order.slice(0, fresh.batchesPerEpoch * fresh.instancesPerBatch);
    // mark the head (the tail check cannot see it): batches that carry the mark came from the file
    [file[0], file[1]] = [file[1], file[0]];
    writeFileSync(join(cache, name), file);
    const l = new DataLoader(d, { globalBatchTokens: 128, seed: 3, orderCacheDir: cache });
    expect(Array.from(l.batchAt(0).instanceIds.subarray(0, 2))).toEqual([order[1], order[0]]);
    expect(readdirSync(cache)).toEqual([name]);
  });
}

test("an OLMo-core-named file of the wrong size or another order is ignored and ours is written", () => {
  const cache = tempDir("olmo-oc-order-");
  const fresh = new DataLoader(ds, { globalBatchTokens: 128, seed: 3 });
  const want = Array.from(fresh.batchAt(2).instanceIds);
  writeFileSync(join(cache, "global_indices_epoch1_seed3_size48.npy"), globalOrder(48, 4, 1)); // seed 4's order
  writeFileSync(join(cache, "global_indices_dataset_size48_epoch1_seed3_v1.npy"), new Uint32Array(10));
  const l = new DataLoader(ds, { globalBatchTokens: 128, seed: 3, orderCacheDir: cache });
  expect(Array.from(l.batchAt(2).instanceIds)).toEqual(want);
  expect(readdirSync(cache).sort()).toEqual(["global_indices_dataset_size48_epoch1_seed3_v1.npy", "global_indices_epoch1_seed3_size48.npy", "olmo-bun-order_chunk1_epoch1_seed3_instances48.u32"]);
});

const pyNumpy = (await import("../../bench/python.ts")).findPython("numpy");
test.skipIf(!pyNumpy)("OLMo-core's dataset fingerprint of the same files (as NumpyDatasetBase.fingerprint computes it)", () => {
  const script = `import hashlib, os, sys, numpy as np
h = hashlib.sha256()
h.update(f"pad_token_id=100277,eos_token_id=100257,dtype={np.uint32}".encode())
for p in sys.argv[1:]:
    h.update(f"name={os.path.basename(p)},size={os.path.getsize(p)}".encode())
print(h.hexdigest())`;
  const out = Bun.spawnSync([pyNumpy!, "-c", script, ...paths], { stdout: "pipe" });
  expect(ds.olmoCoreFingerprint(100277, 100257)).toBe(out.stdout.toString().trim());
});
