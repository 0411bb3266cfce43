// What olmo refuses of an OLMo-core checkpoint, in one line and before anything is written:
// a trainer state that is not the integers OLMo-core writes (issue 21 item 4), and a non-tensor
// item that is not plain data — a pickled call would run under a Python loader of an export
// (issue 21 item 5). Both on reading an OLMo-core folder and on exporting a native checkpoint that
// keeps them.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decodeMetadata, encodeMetadata } from "../../../src/checkpoint/native/metadata.ts";
import { exportOlmoCore } from "../../../src/checkpoint/olmo-core/export.ts";
import { importOlmoCore } from "../../../src/checkpoint/olmo-core/import.ts";
import { openOlmoCoreCheckpoint } from "../../../src/checkpoint/olmo-core/read.ts";
import { PyDict, PyFloat, PyGlobal, PyObject, PyPersistent, PyTuple, type PyValue } from "../../../src/checkpoint/torch/pickle-read.ts";
import { checkPlainData, notPlainData } from "../../../src/checkpoint/torch/plain-data.ts";
import { pickle } from "../../../src/checkpoint/torch/pickle-write.ts";
import { cleanupTemp, tempDir, userErrorOf } from "../helpers.ts";
import { systemCall, trainerState, withItemPickle, withTrainerState } from "./crafted.ts";

afterAll(cleanupTemp);

describe("plain data only outside the tensors", () => {
  test("what OLMo-core's optimizers store passes: None, bools, ints (any size), floats, strings, lists, tuples, dicts", () => {
    const group = new PyDict([["lr", new PyFloat(6e-4)], ["betas", new PyTuple([new PyFloat(0.9), new PyFloat(0.95)])], ["foreach", null], ["amsgrad", false],
      ["params", ["embeddings.weight"]], ["weight_decay", new PyFloat(0)], ["big", 2n ** 70n], ["nested", [new PyDict([[1, [new PyTuple([])]]])]]]);
    expect(notPlainData(group)).toBeNull();
  });

  const refused: [string, PyValue, string][] = [
    ["a call (os.system)", systemCall("touch /tmp/x"), "a call of posix.system"],
    ["a call inside a list inside a dict", new PyDict([["params", ["a", systemCall("x")]]]), "a call of posix.system"],
    ["a call inside a tuple", new PyTuple([new PyFloat(0.9), systemCall("x")]), "a call of posix.system"],
    ["an object built by NEWOBJ", new PyObject(new PyGlobal("subprocess", "Popen"), [["sh"]], "newobj"), "an object of class subprocess.Popen"],
    ["a bare reference to a function", new PyGlobal("builtins", "eval"), "a reference to builtins.eval"],
    ["a persistent id", new PyPersistent(new PyTuple(["storage"])), "a persistent id"],
    ["bytes", new Uint8Array(3), "a bytes"],
    ["a set", new Set([1]), "a set"],
    ["a dict key that is a call", new PyDict([[systemCall("x"), 1]]), "a dict key that is a posix.system object"],
    ["nesting deeper than 32 levels", Array.from({ length: 40 }).reduce<PyValue>((v) => [v], 1), "values nested deeper than 32 levels"],
  ];
  for (const [what, v, why] of refused) {
    test(`refused: ${what}`, () => {
      expect(notPlainData(v)).toBe(why);
      expect(userErrorOf(() => checkPlainData(v, "item x"))).toStartWith(`item x: holds ${why}, not plain data`);
    });
  }

  test("a pickled call in a param group: import, ckpt info's reader and training's reader refuse it in one line, and write nothing", () => {
    const d = tempDir("oc-payload");
    const folder = withItemPickle(join(d, "crafted"), "optim.param_groups.0.foreach", pickle(systemCall("touch /tmp/pwned")));
    const msg = userErrorOf(() => importOlmoCore(folder, join(d, "out")));
    expect(msg).toMatch(/__0_0\.distcp: item optim\.param_groups\.0\.foreach: holds a call of posix\.system, not plain data/);
    expect(existsSync(join(d, "out"))).toBe(false);
    const r = openOlmoCoreCheckpoint(folder);
    try {
      expect(userErrorOf(() => r.keptItems())).toBe(msg);
      expect(userErrorOf(() => r.byteItem("optim.param_groups.0.foreach"))).toBe(msg);
    } finally {
      r.close();
    }
  });

  test("a native checkpoint that keeps a payload (its metadata edited) is refused by export, which writes nothing", () => {
    const d = tempDir("oc-native-payload");
    importOlmoCore(join(import.meta.dir, "fixtures", "step5"), join(d, "native"));
    const file = join(d, "native", "metadata.msgpack");
    const m = decodeMetadata(readFileSync(file), file) as any;
    const items = m.trainState.olmoCore.items;
    items.find((it: any) => it.fqn === "optim.param_groups.1.fused").pickle = Buffer.from(pickle(systemCall("x"))).toString("base64");
    writeFileSync(file, encodeMetadata(m));
    expect(userErrorOf(() => exportOlmoCore(join(d, "native"), join(d, "oc")))).toMatch(/item optim\.param_groups\.1\.fused: holds a call of posix\.system, not plain data/);
    expect(existsSync(join(d, "oc"))).toBe(false);
    // and an import made before items were kept (their pickles as they came): the same rule
    delete m.trainState.olmoCore.items;
    m.trainState.olmoCore.byteItems = { "optim.param_groups.0.fused": Buffer.from(pickle(systemCall("y"))).toString("base64") };
    writeFileSync(file, encodeMetadata(m));
    expect(userErrorOf(() => exportOlmoCore(join(d, "native"), join(d, "oc")))).toMatch(/item optim\.param_groups\.0\.fused: holds a call of posix\.system/);
    expect(existsSync(join(d, "oc"))).toBe(false);
  });
});

describe("the OLMo-core trainer state is checked like native metadata", () => {
  const cases: [string, Record<string, PyValue>, string][] = [
    ["global_step a float", { global_step: new PyFloat(1.5) }, "the trainer state's global_step is 1.5, expected an integer >= 0"],
    ["global_step a whole float", { global_step: new PyFloat(5) }, "global_step is 5.0, expected an integer >= 0"],
    ["global_step NaN", { global_step: new PyFloat(NaN) }, "global_step is nan, expected an integer >= 0"],
    ["global_step negative", { global_step: -5 }, "global_step is -5, expected an integer >= 0"],
    ["global_step beyond 2^53", { global_step: 2n ** 60n }, "global_step is 1152921504606846976, expected an integer >= 0"],
    ["tokens seen infinite", { global_train_tokens_seen: new PyFloat(Infinity) }, "global_train_tokens_seen is inf, expected an integer >= 0"],
    ["tokens seen a string", { global_train_tokens_seen: "2560" }, 'global_train_tokens_seen is "2560", expected an integer >= 0'],
    ["max_steps zero", { max_steps: 0 }, "max_steps is 0, expected an integer >= 1 or None"],
    ["epoch a bool", { epoch: true }, "epoch is true, expected an integer >= 1 or None"],
    ["the data loader's seed negative", { "data_loader.seed": -1 }, "data_loader.seed is -1, expected an integer >= 0"],
    ["the data loader's tokens NaN", { "data_loader.tokens_processed": new PyFloat(NaN) }, "data_loader.tokens_processed is nan"],
    ["a max target that is not a multiple", { "data_loader.max_target_sequence_length": 100 }, "data_loader.max_target_sequence_length is 100, expected a multiple of sequence_length 64"],
    ["the fingerprint not a string", { "data_loader.dataset_fingerprint": 7 }, "data_loader.dataset_fingerprint is 7, expected a string"],
    ["global_step not the folder's", { global_step: 6 }, "the trainer state's global_step is 6, but the folder is named step5"],
  ];
  for (const [what, over, msg] of cases) {
    test(`refused on reading, before anything is written: ${what}`, () => {
      const d = tempDir("oc-ts");
      const folder = withTrainerState(join(d, "step5"), trainerState(over));
      const m = userErrorOf(() => importOlmoCore(folder, join(d, "out")));
      expect(m).toStartWith(join(folder, "train", "rank0.pt"));
      expect(m).toContain(msg);
      expect(existsSync(join(d, "out"))).toBe(false);
    });
  }

  test("the fixture's own state, with None where OLMo-core allows it, is read", () => {
    const d = tempDir("oc-ts-ok");
    const folder = withTrainerState(join(d, "step5"), trainerState({ max_steps: null, "data_loader.epoch": null, world_size: null }));
    const r = openOlmoCoreCheckpoint(folder);
    expect(r.trainState).toMatchObject({ step: 5, tokensSeen: 2560, maxSteps: null, worldSize: null, dataLoader: { epoch: null, seed: 34521 } });
    r.close();
  });

  test("an import keeps the checked state; an export checks the kept copy again (an edited one is refused)", () => {
    const d = tempDir("oc-ts-kept");
    importOlmoCore(join(import.meta.dir, "fixtures", "step5"), join(d, "native"));
    const file = join(d, "native", "metadata.msgpack");
    const m = decodeMetadata(readFileSync(file), file) as any;
    m.trainState.olmoCore.trainer.dataLoader.batchesProcessed = -3;
    writeFileSync(file, encodeMetadata(m));
    expect(userErrorOf(() => exportOlmoCore(join(d, "native"), join(d, "oc")))).toContain("(its imported OLMo-core trainer state): the trainer state's data_loader.batches_processed is -3");
    expect(existsSync(join(d, "oc"))).toBe(false);
  });
});
