// Names read from a checkpoint (a storage class, a torch dtype) are looked up by own entries only:
// "toString", "__proto__" or "constructor" are unknown names with a one-line refusal, never one of
// Object.prototype's members taken for a dtype ("needs NaN", "[object Object]").
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { openOlmoCoreCheckpoint } from "../../../src/checkpoint/olmo-core/read.ts";
import { UserError } from "../../../src/errors.ts";
import { cleanupTemp, tempDir } from "../helpers.ts";
import { fixtureTensors, viewBlob, writeStepFolder } from "./crafted-geometry.ts";

afterAll(cleanupTemp);

const NAMES = ["toString", "__proto__", "constructor", "hasOwnProperty", "valueOf"];

function errorOf(fn: () => void): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  return "(no error)";
}

test("a torch dtype in .metadata that is an Object.prototype key is not supported (one line)", () => {
  for (const name of NAMES) {
    const step = join(tempDir(`oc-dtype-${name}`), "step1");
    writeStepFolder(step, fixtureTensors().map((t) => (t.fqn === "model.embeddings.weight" ? { ...t, dtypeName: name } : t)));
    expect(errorOf(() => openOlmoCoreCheckpoint(step).close())).toMatch(new RegExp(`model\\.embeddings\\.weight: dtype torch\\.${name} is not supported`));
  }
});

test("a storage class in a blob that is an Object.prototype key is not supported (one line)", () => {
  for (const name of NAMES) {
    const step = join(tempDir(`oc-storage-${name}`), "step1");
    const blob = viewBlob([256, 32], [32, 1], new Float32Array(256 * 32), 0, name);
    writeStepFolder(step, fixtureTensors().map((t) => (t.fqn === "model.embeddings.weight" ? { ...t, chunks: [{ offsets: [0, 0], sizes: [256, 32], blob }] } : t)));
    const r = openOlmoCoreCheckpoint(step);
    try {
      expect(errorOf(() => r.read("model", "model.embed_tokens.weight", new Float32Array(256 * 32)))).toMatch(new RegExp(`storage type torch\\.${name} is not supported`));
    } finally {
      r.close();
    }
  }
});
