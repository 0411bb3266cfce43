// Data that can be read but not written — a read-only mount, an immutable file — is how clusters
// keep datasets: every reader that only reads (token files, OLMo-core's cached data order) maps
// it read-only. Each case checks first that the OS really refuses a write to the file.
import { afterAll, expect, test } from "bun:test";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DataLoader, globalOrder, openDataset } from "../../src/data/index.ts";
import { TokenFile } from "../../src/data/token-file.ts";
import { makeImmutable, readOnlyBindMount } from "../support/read-only.ts";
import { patterned, tempDir, writeTokens } from "./helpers.ts";

const dir = tempDir("olmo-ro-");
const src = join(dir, "src");
mkdirSync(src);
const tokens = patterned(3, 16 * 40);
writeTokens(src, "part-0.npy", tokens);
writeTokens(src, "part-1.npy", patterned(4, 16 * 9), "uint16");
// an OLMo-core work_dir holding the epoch order it cached (d7301e62's name), its head marked so a
// loader that used the file can be told from one that recomputed the order
const ds = openDataset({ paths: [join(src, "part-0.npy")], seqLen: 16, vocabSize: 100278 });
const fresh = new DataLoader(ds, { globalBatchTokens: 64, seed: 3 });
const order = globalOrder(ds.numInstances, 3, 1);
const cached = order.slice(0, fresh.batchesPerEpoch * fresh.instancesPerBatch);
[cached[0], cached[1]] = [cached[1], cached[0]];
const orderName = `global_indices_epoch1_seed3_size${cached.length}.npy`;
writeFileSync(join(src, orderName), cached);

const mount = readOnlyBindMount(src, join(dir, "ro"), "part-0.npy");
const ro = (f: string) => join((mount as { path: string }).path, f);
const noMount = typeof mount === "string" ? mount : null;

test.skipIf(noMount !== null)(`a token file on a read-only mount is read (uint32 and uint16)${noMount ? ` — skipped: ${noMount}` : ""}`, () => {
  expect(Array.from(new TokenFile(ro("part-0.npy"), "uint32").tokens())).toEqual(Array.from(tokens));
  expect(Array.from(new TokenFile(ro("part-1.npy"), "uint16").tokens())).toEqual(Array.from(patterned(4, 16 * 9), (x) => x & 0xffff));
  const d = openDataset({ paths: [ro("part-0.npy")], seqLen: 16, vocabSize: 100278 });
  const out = new Int32Array(16);
  d.readInstance(5, out, 0);
  expect(Array.from(out)).toEqual(Array.from(tokens.subarray(80, 96)));
});

test.skipIf(noMount !== null)(`OLMo-core's cached order in a read-only work_dir is used${noMount ? ` — skipped: ${noMount}` : ""}`, () => {
  const l = new DataLoader(ds, { globalBatchTokens: 64, seed: 3, orderCacheDir: (mount as { path: string }).path });
  expect(Array.from(l.batchAt(0).instanceIds.subarray(0, 2))).toEqual([order[1], order[0]]);
});

const immutable = join(dir, "immutable.npy");
writeTokens(dir, "immutable.npy", tokens);
const locked = makeImmutable(immutable);
const noChattr = typeof locked === "string" ? locked : null;
afterAll(() => {
  if (typeof mount !== "string") mount.release();
  if (typeof locked !== "string") locked.release();
  rmSync(dir, { recursive: true, force: true });
});

test.skipIf(noChattr !== null)(`an immutable (chattr +i) token file is read${noChattr ? ` — skipped: ${noChattr}` : ""}`, () => {
  const f = new TokenFile(immutable, "uint32");
  expect(Array.from(f.tokens())).toEqual(Array.from(tokens));
  expect(readFileSync(immutable).length).toBe(tokens.length * 4); // untouched
});

test("a token file that cannot be opened at all is one line naming it", () => {
  const missing = join(dir, "gone.npy");
  writeTokens(dir, "gone.npy", tokens);
  const f = new TokenFile(missing, "uint32");
  Bun.spawnSync(["rm", missing]);
  expect(() => f.tokens()).toThrow(/gone\.npy: cannot memory-map \(ENOENT/);
});
