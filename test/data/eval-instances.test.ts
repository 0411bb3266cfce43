// Eval instances in both layouts (OLMo-core's padded FSL documents; training's windows), the token
// cap, and the held-out split of the embedded corpus: a fixed rule, by document, never overlapping
// the documents trained on.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IGNORE_TARGET, openEvalInstances } from "../../src/data/eval-instances.ts";
import { DOLMA2_EOS_ID } from "../../src/data/index.ts";
import { documentBounds, HELDOUT_EVERY, isHeldOut, readU32, splitByDocument } from "../../src/data/brown/split.ts";
import { embeddedBrownSplit } from "../../src/data/brown/files.ts";

let dir: string;
const EOS = 9;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "olmo-evalinst-"));
  // documents of 3, 1, 6 and 2 tokens (EOS included), then a tail with no EOS
  writeFileSync(join(dir, "a.u32"), Uint32Array.from([1, 2, EOS, EOS, 3, 4, 5, 6, 7, EOS, 8, EOS, 5, 5]));
  writeFileSync(join(dir, "b.u32"), Uint32Array.from({ length: 10 }, (_, i) => i));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const rows = (inst: ReturnType<typeof openEvalInstances>) => Array.from({ length: inst.count }, (_, i) => {
  const tok = new Int32Array(inst.seqLen), tgt = new Int32Array(inst.seqLen);
  inst.fill(i, tok, tgt, 0);
  return { tok: [...tok], tgt: [...tgt] };
});

describe("eval instances", () => {
  test("documents: one per EOS-terminated document, cut to T, labels only inside it; a one-token document and the tail are left out", () => {
    const inst = openEvalInstances({ paths: [join(dir, "a.u32")], dtype: "uint32", seqLen: 4, vocabSize: 16, layout: "documents", eosId: EOS, source: "t" });
    const X = IGNORE_TARGET;
    expect(rows(inst)).toEqual([
      { tok: [1, 2, EOS, EOS], tgt: [2, EOS, X, X] },
      { tok: [3, 4, 5, 6], tgt: [4, 5, 6, X] }, // 6 tokens cut to 4 (OLMo-core drops the rest)
      { tok: [8, EOS, EOS, EOS], tgt: [EOS, X, X, X] },
    ]);
    expect(inst.labelTokens).toBe(2 + 3 + 1);
  });

  test("windows: consecutive T-token windows of each file, the last position unscored", () => {
    const inst = openEvalInstances({ paths: [join(dir, "b.u32"), join(dir, "a.u32")], dtype: "uint32", seqLen: 4, vocabSize: 16, layout: "windows", eosId: EOS, source: "t" });
    expect(rows(inst).map((r) => r.tok)).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [1, 2, EOS, EOS], [3, 4, 5, 6], [7, EOS, 8, EOS]]);
    expect(rows(inst)[0].tgt).toEqual([1, 2, 3, IGNORE_TARGET]);
    expect(inst.labelTokens).toBe(5 * 3);
  });

  test("maxTokens keeps the instances that fit, in file order", () => {
    const docs = openEvalInstances({ paths: [join(dir, "a.u32")], dtype: "uint32", seqLen: 4, vocabSize: 16, layout: "documents", eosId: EOS, maxTokens: 7, source: "t" });
    expect(docs.count).toBe(2); // 3 + 4 tokens
    const win = openEvalInstances({ paths: [join(dir, "b.u32")], dtype: "uint32", seqLen: 4, vocabSize: 16, layout: "windows", eosId: EOS, maxTokens: 5, source: "t" });
    expect(win.count).toBe(1);
  });

  test("bad input names the set and the file", () => {
    const open = (o: object) => () => openEvalInstances({ paths: [join(dir, "a.u32")], dtype: "uint32", seqLen: 4, vocabSize: 16, layout: "documents", eosId: EOS, source: "eval set x", ...o });
    expect(open({ vocabSize: 8 })).toThrow(/eval set x: .*a\.u32: token id 9 at token offset 2 is >= vocab size 8/);
    expect(open({ eosId: 15 })).toThrow(/eval set x: no document/);
    expect(open({ layout: "windows", vocabSize: 8 })).toThrow(/eval set x: .*token id 9/);
    expect(open({ paths: [join(dir, "missing.u32")] })).toThrow(/token file not found/);
  });
});

describe("the held-out split of the embedded corpus", () => {
  test("every 25th document held out; no held-out document is among the training documents; together they are the corpus", async () => {
    const split = await embeddedBrownSplit(undefined, () => {});
    expect({ documents: split.documents, heldout: split.heldoutDocuments }).toEqual({ documents: 500, heldout: 500 / HELDOUT_EVERY });
    const train = readU32(split.train), held = readU32(split.heldout);
    const key = (t: Uint32Array, [s, e]: [number, number]) => Buffer.from(t.buffer, t.byteOffset + 4 * s, 4 * (e - s)).toString("base64");
    const trainDocs = documentBounds(train, DOLMA2_EOS_ID), heldDocs = documentBounds(held, DOLMA2_EOS_ID);
    expect(trainDocs.length + heldDocs.length).toBe(500);
    const trainSet = new Set(trainDocs.map((b) => key(train, b)));
    for (const b of heldDocs) expect(trainSet.has(key(held, b))).toBe(false);
    expect(train.length + held.length).toBe(split.trainTokens + split.heldoutTokens);
    // the rule, on the document order: 24, 49, … are held out
    expect([0, 23, 24, 25, 49, 499].map(isHeldOut)).toEqual([false, false, true, false, true, true]);
  });

  test("split by document from part files: reused while the parts are unchanged, recut when they change", () => {
    const docs = Array.from({ length: 50 }, (_, i) => [100 + i, 200 + i, DOLMA2_EOS_ID]).flat();
    const part = join(dir, "part-00000.npy");
    writeFileSync(part, Uint32Array.from(docs));
    const s1 = splitByDocument([part], join(dir, "split"), DOLMA2_EOS_ID);
    expect([...readU32(s1.heldout)]).toEqual([124, 224, DOLMA2_EOS_ID, 149, 249, DOLMA2_EOS_ID]);
    expect(splitByDocument([part], join(dir, "split"), DOLMA2_EOS_ID)).toEqual(s1);
    writeFileSync(part, Uint32Array.from([...docs, 7, DOLMA2_EOS_ID]));
    const s2 = splitByDocument([part], join(dir, "split"), DOLMA2_EOS_ID);
    expect(s2.documents).toBe(51);
    expect(readU32(s2.train).length).toBe(48 * 3 + 2);
  });
});
