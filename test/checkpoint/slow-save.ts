// Subprocess for the kill -9 test: saves a large checkpoint and pauses after the first tensor
// (printing "saving"), so the parent can kill it mid-save deterministically.
import { saveCheckpoint } from "../../src/checkpoint/native/write.ts";
import { paramSpecs, totalParams } from "../../src/model/params.ts";
import { tinyConfig } from "./helpers.ts";

const [dir, name] = process.argv.slice(2);
const model = tinyConfig({ dModel: 256, nLayers: 4, nHeads: 4, nKvHeads: 4, ffnHidden: 1024, vocabSize: 32000 });
const n = totalParams(paramSpecs(model));
const arena = new Float32Array(n).fill(0.5);
let announced = false;
saveCheckpoint(dir, name, { model, trainState: { step: 2 }, tensors: { model: arena, adamM: arena, adamV: arena } }, {
  onProgress: () => {
    if (announced) return;
    announced = true;
    console.log("saving");
    Bun.sleepSync(20_000);
  },
});
console.log("finished");
