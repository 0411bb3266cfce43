// The OLMo-core rows of the bad-input table (docs/bad-input.md): damaged copies of the committed
// fixture step folder, each imported with `olmo import-olmo-core`, which must fail in one line and
// leave no output folder.
import { cpSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseDcpMetadata } from "../../src/checkpoint/olmo-core/dcp-metadata.ts";
import { PyDict, PyFloat, PyGlobal, PyObject, PyTuple, type PyValue } from "../../src/checkpoint/torch/pickle-read.ts";
import { dataclassRecord, pickle } from "../../src/checkpoint/torch/pickle-write.ts";
import { decodeMetadata, encodeMetadata } from "../../src/checkpoint/native/metadata.ts";
import { importOlmoCore } from "../../src/checkpoint/olmo-core/import.ts";
import { FIXTURE, systemCall, trainerState, withItemPickle, withTrainerState } from "../checkpoint/olmo-core/crafted.ts";
import type { BadInputRow } from "./bad-input-row.ts";

/** The fixture's model, over the bad-input config's (whose model is smaller). */
const fixtureModel = ["--model.dModel=32", "--model.ffnHidden=64"];

export function olmoCoreRows(p: (...x: string[]) => string): BadInputRow[] {
  const imp = (name: string, mistake: string, message: RegExp): BadInputRow => ({
    mistake, args: () => ["import-olmo-core", p(name), "--out", p(`imp-${name.replace("/", "-")}`)], message, absent: () => [p(`imp-${name.replace("/", "-")}`)],
  });
  return [
    imp("oc-nometa", "OLMo-core folder without .metadata", /not an OLMo-core checkpoint: no model_and_optim\/\.metadata/),
    imp("oc-trunc", "truncated OLMo-core .distcp file", /__1_0\.distcp: item .* runs past the end of the file .*truncated or corrupt/),
    imp("oc-itempast", "OLMo-core blob whose record runs past the item", /__0_0\.distcp: item model\.embeddings\.weight at 0: not a valid torch\.save archive: entry archive\/data\/0 .* runs past the archive's \d+ bytes/),
    imp("oc-badop", "OLMo-core .metadata with a pickle opcode outside the subset", /\.metadata: not a valid pickle: opcode 0x70 \('p'\) at offset 2 is outside the supported subset/),
    imp("oc-bigcount", "OLMo-core .metadata with a count larger than the file", /\.metadata: not a valid pickle: a BINUNICODE string of 4294967280 bytes at offset 7 runs past the end \(12 bytes\)/),
    imp("oc-tiling", "OLMo-core chunks that do not tile the tensor", /the chunks of model\.embeddings\.weight \[256,32\] do not tile the tensor: they hold 7296 elements, the tensor 8192/),
    imp("oc-mismatch", "OLMo-core model that does not match its config.json", /tensor model\.blocks\.0\.feed_forward\.w1\.weight has shape \[64,32\], but .*config\.json implies \[96,32\]: the model does not match the config/),
    imp("oc-ts-float/step5", "OLMo-core trainer state with a fractional step", /step5\/train\/rank0\.pt: the trainer state's global_step is 1\.5, expected an integer >= 0$/),
    imp("oc-ts-inf/step5", "OLMo-core trainer state with infinite tokens seen", /rank0\.pt: the trainer state's global_train_tokens_seen is inf, expected an integer >= 0$/),
    imp("oc-ts-name/step5", "OLMo-core step folder whose trainer state is another step", /rank0\.pt: the trainer state's global_step is 6, but the folder is named step5$/),
    {
      mistake: "ckpt info of an OLMo-core trainer state with a NaN step", args: () => ["ckpt", "info", p("oc-ts-nan", "step5")],
      message: /rank0\.pt: the trainer state's global_step is nan, expected an integer >= 0$/,
    },
    {
      mistake: "train from an OLMo-core trainer state with a negative step",
      args: () => ["train", p("cfg.ts"), `--run-dir=${p("runs", "oc-neg")}`, "--quiet", `--checkpoint.loadPath=${p("oc-ts-neg", "step5")}`, "--checkpoint.loadTrainerState=true"],
      message: /rank0\.pt: the trainer state's global_step is -5, expected an integer >= 0$/, absent: () => [join(p("runs", "oc-neg"), "metrics.jsonl")],
    },
    {
      // the resume rule (src/data/resume.ts): the order is a shuffle of max-target-length chunks
      mistake: "resume with another max-target length than the checkpoint's data order",
      args: () => ["train", p("cfg.ts"), `--run-dir=${p("runs", "oc-chunk")}`, "--quiet", `--checkpoint.loadPath=${p("oc-fixture", "step5")}`, "--checkpoint.loadTrainerState=true", ...fixtureModel,
        "--accept-change=train.seqLen,optim.lr"],
      message: /resume from OLMo-core: the checkpoint's data order shuffles instances of 64 tokens, this run's instances of 16 tokens \(data\.maxTargetSeqLen, else train\.seqLen\): the order would not continue; set data\.maxTargetSeqLen 64/,
      absent: () => [join(p("runs", "oc-chunk"), "metrics.jsonl")],
    },
    {
      mistake: "resume from OLMo-core with a tokenizer olmo has no EOS/PAD ids for",
      args: () => ["train", p("cfg.ts"), `--run-dir=${p("runs", "oc-tok")}`, "--quiet", `--checkpoint.loadPath=${p("oc-fixture", "step5")}`, "--checkpoint.loadTrainerState=true", ...fixtureModel,
        "--train.seqLen=64", "--train.globalBatchInstances=8", "--train.microBatchInstances=4", "--train.steps=8", "--data.allowRepetition=true", "--data.tokenizer=my/tokenizer",
        "--accept-change=train.steps,optim.lr"],
      message: /resume from OLMo-core: its dataset fingerprint hashes the tokenizer's EOS and PAD ids, and data\.tokenizer "my\/tokenizer" is not one olmo knows; set data\.eosTokenId and data\.padTokenId$/,
      absent: () => [join(p("runs", "oc-tok"), "metrics.jsonl")],
    },
    imp("oc-payload/step5", "a pickled call in an OLMo-core param group", /__0_0\.distcp: item optim\.param_groups\.0\.foreach: holds a call of posix\.system, not plain data/),
    {
      mistake: "export of a native checkpoint that keeps a pickled call", args: () => ["export-olmo-core", p("oc-payload-native"), "--out", p("exp-oc-payload")],
      message: /item optim\.param_groups\.1\.fused: holds a call of posix\.system, not plain data/, absent: () => [p("exp-oc-payload")],
    },
  ];
}

const torchSize = (xs: number[]) => new PyObject(new PyGlobal("torch", "Size"), [new PyTuple(xs)], "reduce");

/** A Metadata whose embedding has two chunks with a gap between them. */
function gapMetadata(): Uint8Array {
  const MD = "torch.distributed.checkpoint.metadata";
  const props = new PyObject(new PyGlobal(MD, "TensorProperties"), [], "newobj");
  props.state = new PyTuple([new PyGlobal("torch", "float32"), new PyGlobal("torch", "strided"), false, null, false]);
  const chunks = [[0, 100], [128, 128]].map(([o, n]) => dataclassRecord(MD, "ChunkStorageMetadata", [["offsets", torchSize([o, 0])], ["sizes", torchSize([n, 32])]]));
  const sdm = new PyDict([["model.embeddings.weight", dataclassRecord(MD, "TensorStorageMetadata", [["properties", props], ["size", torchSize([256, 32])], ["chunks", chunks]])]]);
  const sd = new PyDict([0, 128].map((o) => [
    dataclassRecord(MD, "MetadataIndex", [["fqn", "model.embeddings.weight"], ["offset", torchSize([o, 0])], ["index", 0]]),
    dataclassRecord("torch.distributed.checkpoint.filesystem", "_StorageInfo", [["relative_path", "__0_0.distcp"], ["offset", 0], ["length", 100]]),
  ]));
  return pickle(dataclassRecord(MD, "Metadata", [["state_dict_metadata", sdm], ["planner_data", null], ["storage_data", sd]]));
}

export function setupOlmoCoreBadInputs(p: (...x: string[]) => string): void {
  const copy = (name: string) => {
    cpSync(FIXTURE, p(name), { recursive: true });
    return (...x: string[]) => join(p(name), ...x);
  };
  rmSync(copy("oc-nometa")("model_and_optim", ".metadata"));
  const trunc = copy("oc-trunc")("model_and_optim", "__1_0.distcp");
  truncateSync(trunc, readFileSync(trunc).length - 1000);
  // the first blob of rank 0's file: claim its data record is far longer than the blob
  const past = copy("oc-itempast");
  const md = parseDcpMetadata(readFileSync(past("model_and_optim", ".metadata")), "fixture");
  const s = md.tensors.get("model.embeddings.weight")!.chunks[0].storage;
  const file = readFileSync(past("model_and_optim", s.relativePath));
  const blob = file.subarray(s.offset, s.offset + s.length), dv = new DataView(blob.buffer, blob.byteOffset, blob.length);
  const eocd = blob.length - 22, cdAt = dv.getUint32(eocd + 16, true), count = dv.getUint16(eocd + 10, true);
  for (let i = 0, q = cdAt; i < count; i++) {
    const nameLen = dv.getUint16(q + 28, true);
    if (new TextDecoder().decode(blob.subarray(q + 46, q + 46 + nameLen)).endsWith("data/0")) {
      dv.setUint32(q + 20, 0x7fff0000, true);
      dv.setUint32(q + 24, 0x7fff0000, true);
    }
    q += 46 + nameLen + dv.getUint16(q + 30, true) + dv.getUint16(q + 32, true);
  }
  writeFileSync(past("model_and_optim", s.relativePath), file);
  writeFileSync(copy("oc-badop")("model_and_optim", ".metadata"), new TextEncoder().encode("(dp0\n."));
  writeFileSync(copy("oc-bigcount")("model_and_optim", ".metadata"), Uint8Array.from([0x80, 0x02, 0x58, 0xf0, 0xff, 0xff, 0xff, 0x2e, 0x2e, 0x2e, 0x2e, 0x2e]));
  writeFileSync(copy("oc-tiling")("model_and_optim", ".metadata"), gapMetadata());
  cpSync(FIXTURE, p("oc-fixture", "step5"), { recursive: true });
  const state = (name: string, over: Record<string, PyValue>) => withTrainerState(p(name, "step5"), trainerState(over));
  state("oc-ts-float", { global_step: new PyFloat(1.5) });
  state("oc-ts-inf", { global_train_tokens_seen: new PyFloat(Infinity) });
  state("oc-ts-name", { global_step: 6 });
  state("oc-ts-nan", { global_step: new PyFloat(NaN) });
  state("oc-ts-neg", { global_step: -5 });
  withItemPickle(p("oc-payload"), "optim.param_groups.0.foreach", pickle(systemCall("touch /tmp/pwned")));
  // a native checkpoint (an import) whose kept param-group item was edited into a call
  importOlmoCore(FIXTURE, p("oc-payload-native"));
  const metaFile = join(p("oc-payload-native"), "metadata.msgpack");
  const m = decodeMetadata(readFileSync(metaFile), metaFile) as any;
  m.trainState.olmoCore.items.find((it: any) => it.fqn === "optim.param_groups.1.fused").pickle = Buffer.from(pickle(systemCall("x"))).toString("base64");
  writeFileSync(metaFile, encodeMetadata(m));
  const cfg = copy("oc-mismatch")("config.json");
  const j = JSON.parse(readFileSync(cfg, "utf8"));
  j.model.block.feed_forward.hidden_size = 96;
  writeFileSync(cfg, JSON.stringify(j));
}
