// Bad input, tried as a new user would (docs/bad-input.md is this table in prose): every mistake
// gives exactly one line on stderr naming the input, exit code 2, and leaves nothing half-written
// (no output folder, no temporary folder, no checkpoint, no partial token file).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { cudaUsable } from "../../src/backend/native-backend.ts";
import { exportHf } from "../../src/checkpoint/hf/folder.ts";
import { decodeMetadata, encodeMetadata } from "../../src/checkpoint/native/metadata.ts";
import { saveCheckpoint } from "../../src/checkpoint/native/write.ts";
import { ModelConfigSchema } from "../../src/model/config.ts";
import { paramSpecs, totalParams } from "../../src/model/params.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { TINY_MODEL, tinyRunConfig, writeTinyTokens } from "../support/tiny-job.ts";
import { olmoCoreRows, setupOlmoCoreBadInputs } from "./bad-input-olmo-core.ts";
import { inputRows, setupInputBadInputs } from "./bad-input-inputs.ts";
import { peerRows, startPeerStores } from "./bad-input-peers.ts";
import { RUN_UX_AT2_COPIES, runUxRows, setupRunUxBadInputs } from "./bad-input-run-ux.ts";
import { runWithoutLibraries } from "../support/hide-libs.ts";
import type { BadInputRow } from "./bad-input-row.ts";

const root = resolve(import.meta.dir, "../..");
const D = mkdtempSync(join(tmpdir(), "olmo-bad-"));
const p = (...x: string[]) => join(D, ...x);

const model = TINY_MODEL;
const other = { ...model, ffnHidden: 48 };

function runConfig(over: Record<string, unknown> = {}) {
  const sections = { train: { steps: 2 }, optim: { schedule: { kind: "cosine", warmupSteps: 1, alpha: 0.1 } as const }, checkpoint: { saveInterval: 0, keep: 1 } };
  return { ...tinyRunConfig("bad", p("tokens.u32"), sections), ...over };
}

/** Rewrite a checkpoint's index with a valid metadata checksum, so only the validation can catch the edit. */
function editMeta(ckpt: string, change: (m: any) => void): void {
  const file = join(ckpt, "metadata.msgpack");
  const m = decodeMetadata(readFileSync(file), file) as any;
  change(m);
  writeFileSync(file, encodeMetadata(m));
}

function arena(m: typeof model, seed: number): Float32Array {
  const a = new Float32Array(totalParams(paramSpecs(ModelConfigSchema.parse(m))));
  for (let i = 0; i < a.length; i++) a[i] = 0.02 * Math.sin(i * 0.37 + seed);
  return a;
}

const cfg = () => p("cfg.ts");
const runDir = (id: string) => p("runs", id);
const train = (id: string, ...extra: string[]) => ["train", cfg(), `--run-dir=${runDir(id)}`, "--quiet", ...extra];

export const rows: BadInputRow[] = [
  { mistake: "wrong config path", args: () => ["train", p("nope.ts")], message: /config file not found: .*nope\.ts/ },
  { mistake: "config file without a default export", args: () => ["train", p("noexport.ts")], message: /must have a default export/ },
  { mistake: "config field typo (override)", args: () => train("typo", "--optim.lerning_rate=1e-3"), message: /--optim\.lerning_rate on the command line is not a config field \(optim's fields: lr, /, absent: () => [runDir("typo")] },
  { mistake: "config field typo (in the file)", args: () => ["train", p("typo.ts")], message: /invalid config at train: .*globalBatchInstance/ },
  { mistake: "negative learning rate", args: () => train("lr", "--optim.lr=-1"), message: /invalid config at optim\.lr/, absent: () => [runDir("lr")] },
  { mistake: "learning rate so high the run diverges", args: () => train("lr-huge", "--optim.lr=1e30"), message: /training diverged: the loss is not finite at step 2 \(.*\); the last finite loss was \d+\.\d+ at step 1; this step's update was not applied .*; no checkpoint was saved before it/ },
  { mistake: "eps that is 0 in float32", args: () => train("eps", "--optim.eps=1e-300"), message: /invalid config at optim\.eps: eps rounds to 0 in float32/, absent: () => [runDir("eps")] },
  { mistake: "a model too large for this machine", args: () => train("huge", "--model.dModel=5120", "--model.nLayers=64", "--model.nHeads=40", "--model.nKvHeads=8", "--model.ffnHidden=27648", "--model.vocabSize=100278"),
    message: /the run needs \d+\.\d GiB per rank at tp=1 dp=1 \(weights .*olmo plan's accounting\) but this host has \d+\.\d GiB available; it fits on 80 GB GPUs as olmo plan CONFIG --gpus \d+ --tp \d/, absent: () => [runDir("huge")] },
  { mistake: "checkpoint.loadPath that does not exist", args: () => train("noload", `--checkpoint.loadPath=${p("no-such-ckpt")}`), message: /checkpoint\.loadPath .*no-such-ckpt does not exist/, absent: () => [runDir("noload")] },
  { mistake: "batch not divisible by micro-batch", args: () => train("mb", "--train.microBatchInstances=3"), message: /train\.microBatchInstances: globalBatchInstances 4 is not divisible by microBatchInstances 3/ },
  { mistake: "batch not divisible by micro-batch × DP", args: () => ["plan", cfg(), "--dp", "3"], message: /globalBatchInstances 4 is not divisible by microBatchInstances × dp = 2 × 3/ },
  { mistake: "sequence longer than the RoPE range", args: () => train("rope", "--train.seqLen=128"), message: /train\.seqLen: seqLen 128 exceeds model\.maxSeqLen 64/ },
  { mistake: "bad --a.b override type", args: () => train("type", "--train.steps=abc"), message: /invalid config at train\.steps/ },
  { mistake: "override below a non-object field", args: () => train("nonobj", "--optim.lr.value=1"), message: /--optim\.lr\.value on the command line: optim\.lr is a number field, not a section/ },
  { mistake: "data file missing", args: () => train("nofile", `--data.paths=["${p("missing.u32")}"]`), message: /token file not found/, absent: () => [runDir("nofile")] },
  { mistake: "data root (mix baseDir) missing", args: () => train("noroot", "--data.paths=[]", `--data.mixFile=${p("mix.txt")}`, `--data.baseDir=${p("no-such-root")}`), message: /no-such-root/, absent: () => [runDir("noroot")] },
  { mistake: "empty data file", args: () => train("empty", `--data.paths=["${p("empty.u32")}"]`), message: /the data has 0 instances/, absent: () => [runDir("empty")] },
  { mistake: "data too small for the run", args: () => train("short", "--train.steps=1000"), message: /1000 steps|epoch|repetition/i, absent: () => [runDir("short")] },
  { mistake: "token id ≥ vocabulary size", args: () => train("vocab", `--data.paths=["${p("big.u32")}"]`), message: /token id 300 .*vocab size 256/, absent: () => [runDir("vocab")] },
  {
    mistake: "CUDA requested with no GPU (also how a missing NCCL surfaces without a GPU)", args: () => ["train", p("cfg-cuda.ts"), `--run-dir=${runDir("cuda")}`],
    message: /CUDA backend requested but no GPU is usable/, skip: () => (typeof cudaUsable() === "number" ? "a GPU is usable here" : null),
    env: { OLMO_BACKEND: "" }, // the config's backend applies when OLMO_BACKEND is unset (environment > config)
  },
  { mistake: "checkpoint from another model", args: () => train("other", `--checkpoint.loadPath=${p("ckpt-other", "stage1-step3-tokens1B")}`), message: /checkpoint is of another model: ffnHidden/, absent: () => [runDir("other")] },
  { mistake: "loadPath neither native, OLMo-core nor HF", args: () => train("neither", `--checkpoint.loadPath=${p("notckpt")}`), message: /neither a native checkpoint \(metadata\.msgpack\), an OLMo-core step folder \(model_and_optim\/\.metadata\) nor an HF folder/, absent: () => [runDir("neither")] },
  { mistake: "soup of one checkpoint", args: () => ["soup", p("ckpt", "stage1-step3-tokens1B"), "--out", p("soup1")], message: /needs at least 2 checkpoints/, absent: () => [p("soup1")] },
  { mistake: "soup of different models", args: () => ["soup", p("ckpt", "stage1-step3-tokens1B"), p("ckpt-other", "stage1-step3-tokens1B"), "--out", p("soup2")], message: /does not match.*ffnHidden/, absent: () => [p("soup2")] },
  { mistake: "soup weights not numbers", args: () => ["soup", p("ckpt", "stage1-step3-tokens1B"), p("hf"), "--weights", "1,x", "--out", p("soup3")], message: /--weights must be numbers/, absent: () => [p("soup3")] },
  { mistake: "HF folder without config.json", args: () => ["import-hf", p("hf-noconfig"), "--out", p("imp1")], message: /config\.json/, absent: () => [p("imp1")] },
  { mistake: "corrupted safetensors header", args: () => ["import-hf", p("hf-badheader"), "--out", p("imp2")], message: /safetensors/, absent: () => [p("imp2")] },
  { mistake: "truncated safetensors body", args: () => ["import-hf", p("hf-trunc"), "--out", p("imp3")], message: /truncated|shorter|ends at/, absent: () => [p("imp3")] },
  { mistake: "export-hf into a non-empty folder", args: () => ["export-hf", p("ckpt", "stage1-step3-tokens1B"), "--out", p("nonempty")], message: /already exists and is not empty/ },
  { mistake: "export-hf of a missing checkpoint", args: () => ["export-hf", p("no-ckpt"), "--out", p("exp1")], message: /not found/, absent: () => [p("exp1")] },
  { mistake: "export-hf with an unknown dtype", args: () => ["export-hf", p("ckpt", "stage1-step3-tokens1B"), "--out", p("exp2"), "--dtype", "fp16"], message: /--dtype/, absent: () => [p("exp2")] },
  { mistake: "ckpt info on a non-checkpoint", args: () => ["ckpt", "info", p("notckpt")], message: /not a checkpoint: no metadata\.msgpack/ },
  { mistake: "eval sequence longer than max positions", args: () => ["eval", "--from-hf", p("hf"), "--data", p("tokens.u32"), "--seq-len", "128"], message: /--seq-len 128 exceeds the model's max_position_embeddings 64/ },
  { mistake: "eval data shorter than one instance", args: () => ["eval", "--from-hf", p("hf"), "--data", p("tokens.u32"), "--seq-len", "1000"], message: /fewer than one instance of --seq-len 1000/ },
  { mistake: "eval data not uint32", args: () => ["eval", "--from-hf", p("hf"), "--data", p("odd.bin"), "--seq-len", "8"], message: /not a multiple of 4/ },
  { mistake: "eval set file missing", args: () => train("evalmiss", `--eval.sets=[{"name":"held","paths":["${p("missing.u32")}"]}]`), message: /eval set held: token file not found: .*missing\.u32/, absent: () => [runDir("evalmiss")] },
  { mistake: "eval set with no source", args: () => train("evalnone", `--eval.sets=[{"name":"held"}]`), message: /invalid config at eval\.sets\.0\.paths: set exactly one of paths, mixFile, embedded/, absent: () => [runDir("evalnone")] },
  { mistake: "eval documents without their EOS", args: () => train("evaleos", `--eval.sets=[{"name":"held","paths":["${p("tokens.u32")}"]}]`), message: /eval set held: no document \(a run of tokens ending in EOS 100257\)/, absent: () => [runDir("evaleos")] },
  { mistake: "eval task file malformed", args: () => train("evaltask", `--eval.tasks=[{"path":"${p("bad-task.jsonl")}"}]`), message: /bad-task\.jsonl:2: "gold" must be the index of the right choice, 0…1; got 5/, absent: () => [runDir("evaltask")] },
  { mistake: "eval task beyond the model's vocabulary", args: () => train("evalvocab", `--eval.tasks=[{"path":"${p("task.jsonl")}"}]`), message: /task\.jsonl:1: token id \d+ \(cl100k_base\) is >= the model's vocab size 256/, absent: () => [runDir("evalvocab")] },
  { mistake: "olmo eval with both --data and --task", args: () => ["eval", "--from", p("hf"), "--data", p("tokens.u32"), "--seq-len", "8", "--task", p("task.jsonl")], message: /give --data FILE \(perplexity\) or --task FILE\.jsonl \(multiple choice\), one of them/ },
  { mistake: "olmo eval --task file missing", args: () => ["eval", "--from", p("hf"), "--task", p("missing.jsonl")], message: /task file not found: .*missing\.jsonl/ },
  { mistake: "olmo eval --record into a file", args: () => ["eval", "--from", p("hf"), "--data", p("tokens.u32"), "--seq-len", "8", "--record", p("afile")], message: /--record .*afile.* is a file/ },
  { mistake: "prepare with a missing input", args: () => ["prepare", p("missing.txt"), "--out", p("prep1")], message: /missing\.txt/, absent: () => [p("prep1")] },
  { mistake: "prepare into a folder with token files", args: () => ["prepare", p("doc.txt"), "--out", p("prepared")], message: /already holds part-\*\.npy/ },
  { mistake: "data order with a negative N", args: () => ["data", "order", "--instances", "-5", "--seed", "0"], message: /--instances must be an integer >= /},
  { mistake: "report of a folder that is not a run", args: () => ["report", p("notckpt"), "--out", p("report.html")], message: /has no metrics\.jsonl/, absent: () => [p("report.html")] },
  { mistake: "unknown option", args: () => ["train", cfg(), "--frobnicate"], message: /unknown option --frobnicate/ },
  { mistake: "unknown command", args: () => ["trian"], message: /unknown command "trian"/ },
  { mistake: "missing required option", args: () => ["export-hf", p("ckpt", "stage1-step3-tokens1B")], message: /missing required option --out/ },
  { mistake: "non-numeric number option", args: () => ["data", "order", "--instances", "ten", "--seed", "0"], message: /--instances must be a number, got "ten"/ },
  { mistake: "boolean option given a value", args: () => ["train", cfg(), "--quiet=maybe"], message: /--quiet takes true or false/ },
  { mistake: "too many positional arguments", args: () => ["train", cfg(), cfg()], message: /train takes one CONFIG/ },
  { mistake: "run folder path is a file", args: () => ["train", cfg(), `--run-dir=${p("afile", "run")}`, "--quiet"], message: /afile/ },
  {
    mistake: "disk full during checkpoint save", args: () => ["train", cfg(), `--run-dir=${p("full", "run")}`, "--quiet", "--checkpoint.saveInterval=1"],
    message: /ENOSPC|no space/i, skip: () => (fullFsMounted ? null : "cannot mount a small tmpfs here (needs root and CAP_SYS_ADMIN)"),
  },
  ...olmoCoreRows(p),
  // ---- cluster hardening: refusals that used to be silent, stack traces, or half-written outputs ----
  { mistake: "a second trainer on a run folder in use", args: () => train("locked"), message: /run folder .*locked is in use by another olmo train \(pid \d+/, absent: () => [join(runDir("locked"), "metrics.jsonl")] },
  { mistake: "OLMO_BACKEND not a backend", args: () => train("envb"), env: { OLMO_BACKEND: "bogus" }, message: /OLMO_BACKEND=bogus is not one of cpu, cuda, auto/, absent: () => [runDir("envb")] },
  { mistake: "OLMO_THREADS not a number", args: () => train("envt1"), env: { OLMO_THREADS: "abc" }, message: /OLMO_THREADS=abc must be a whole number of CPU threads from 1 to 4096/, absent: () => [runDir("envt1")] },
  { mistake: "OLMO_THREADS zero", args: () => train("envt2"), env: { OLMO_THREADS: "0" }, message: /OLMO_THREADS=0 must be a whole number/, absent: () => [runDir("envt2")] },
  { mistake: "OLMO_THREADS negative", args: () => train("envt3"), env: { OLMO_THREADS: "-3" }, message: /OLMO_THREADS=-3 must be a whole number/, absent: () => [runDir("envt3")] },
  { mistake: "OLMO_THREADS fractional", args: () => train("envt4"), env: { OLMO_THREADS: "1.7" }, message: /OLMO_THREADS=1\.7 must be a whole number/, absent: () => [runDir("envt4")] },
  { mistake: "--stop-after negative", args: () => train("stopneg", "--stop-after=-5"), message: /--stop-after must be a step number >= 1, got -5/, absent: () => [runDir("stopneg")] },
  { mistake: "--stop-after before the step the run resumes at", args: () => train("at2-stop", "--stop-after=1"), message: /--stop-after 1: the run is already at step 2 .*nothing to train/ },
  { mistake: "checkpoint past the run's last step", args: () => train("at2-past", "--train.steps=1"), message: /stage1-step2-tokens1B: the checkpoint is at step 2, beyond this run's 1 steps/ },
  { mistake: "resume from a checkpoint missing one Adam moment", args: () => train("at2-partial"), message: /invalid checkpoint index .*the adam_m moments of 1 of \d+ tensors are missing \(first: model\.layers\.0\.self_attn\.q_proj\.weight\)/ },
  { mistake: "ckpt info of a checkpoint missing one Adam moment", args: () => ["ckpt", "info", p("runs", "at2-partial", "stage1-step2-tokens1B")], message: /the adam_m moments of 1 of \d+ tensors are missing/ },
  { mistake: "ckpt info of a damaged metadata byte", args: () => ["ckpt", "info", p("ckpt-flip", "stage1-step3-tokens1B")], message: /metadata\.msgpack: checksum mismatch in the metadata/ },
  { mistake: "crafted metadata: a 2^40-element shape", args: () => ["ckpt", "info", p("ckpt-huge", "stage1-step3-tokens1B")], message: /tensor model\.embed_tokens\.weight \(model\) has shape \[1048576,1048576\], the model config implies \[256,16\]/ },
  { mistake: "crafted metadata: a negative offset", args: () => ["ckpt", "info", p("ckpt-negoff", "stage1-step3-tokens1B")], message: /slice 0: offset -8 .* are not non-negative byte counts/ },
  { mistake: "crafted metadata: a tensor name that is a number", args: () => ["ckpt", "info", p("ckpt-type", "stage1-step3-tokens1B")], message: /tensors\[0\]\.name is 7, expected a string/ },
  { mistake: "crafted metadata: trainState.step not a number", args: () => ["ckpt", "info", p("ckpt-step", "stage1-step3-tokens1B")], message: /trainState\.step is "abc", expected a non-negative integer/ },
  { mistake: "export-hf of a checkpoint with a bad checksum", args: () => ["export-hf", p("ckpt-bad", "stage1-step3-tokens1B"), "--out", p("exp-bad")], message: /checksum mismatch in tensor/, absent: () => [p("exp-bad")] },
  { mistake: "soup --format hf with a bad checksum", args: () => ["soup", p("ckpt", "stage1-step3-tokens1B"), p("ckpt-bad", "stage1-step3-tokens1B"), "--format", "hf", "--out", p("soup-bad")], message: /checksum mismatch in tensor/, absent: () => [p("soup-bad")] },
  { mistake: "prepare with a malformed later input", args: () => ["prepare", p("doc.txt"), p("bad.jsonl"), "--out", p("prep-bad"), "--max-file-tokens", "2"], message: /bad\.jsonl:2: not valid JSON/, absent: () => [p("prep-bad")] },
  { mistake: "sample prompt outside a small vocabulary", args: () => train("sample1", "--train.samplePrompt=Hello"), message: /train\.samplePrompt "Hello" encodes to token id \d+, outside this model's vocabulary of 256/, absent: () => [runDir("sample1")] },
  { mistake: "sample prompt holding the end-of-text token", args: () => train("sample2", "--train.samplePrompt=a<|endoftext|>"), message: /encodes to token id \d+, outside this model's vocabulary/, absent: () => [runDir("sample2")] },
  { mistake: "HF index whose weight_map values are numbers", args: () => ["import-hf", p("hf-numeric"), "--out", p("imp4")], message: /model\.safetensors\.index\.json: weight_map puts .* in 1, not a \.safetensors file name/, absent: () => [p("imp4")] },
  { mistake: "HF weights holding NaN", args: () => ["import-hf", p("hf-nan"), "--out", p("imp5")], message: /tensor model\.layers\.0\.mlp\.up_proj\.weight holds NaN at element 5; refusing non-finite weights/, absent: () => [p("imp5")] },
  { mistake: "ckpt info of HF weights holding Inf", args: () => ["ckpt", "info", p("hf-inf")], message: /tensor lm_head\.weight holds Infinity at element 0/ },
  { mistake: "uint32 token file read as uint16", args: () => train("dtype16", "--data.dtype=uint16"), message: /read as uint16, every second token .* is 0 .*set data\.dtype to "uint32"/, absent: () => [runDir("dtype16")] },
  { mistake: "uint16 token file read as uint32", args: () => train("dtype32", `--data.paths=["${p("tokens.u16")}"]`), message: /tokens\.u16: token id \d+ .* its 16-bit halves are all valid ids: the file holds uint16 tokens, set data\.dtype to "uint16"/, absent: () => [runDir("dtype32")] },
  { mistake: "unknown recompute mode (OLMo-core's name)", args: () => train("recompute", "--train.recompute=full"), message: /train\.recompute: expected one of "none", "attention", "block"/, absent: () => [runDir("recompute")] },
  { mistake: "per-layer recompute list of the wrong length", args: () => train("recompute2", '--train.recompute=["block"]'), message: /train\.recompute: lists 1 modes for 2 layers/, absent: () => [runDir("recompute2")] },
  ...inputRows({ p, train, runDir }),
  ...peerRows(train),
  ...runUxRows(p, train, runDir),
];

let fullFsMounted = false;
let stopPeerStores = () => {};
const results: { code: number | null; stderr: string }[] = [];

beforeAll(async () => {
  ensureNativeBuilt("cpu");
  writeFileSync(cfg(), `export default ${JSON.stringify(runConfig())};\n`);
  writeFileSync(p("cfg-cuda.ts"), `export default ${JSON.stringify(runConfig({ backend: "cuda" }))};\n`);
  writeFileSync(p("noexport.ts"), "export const config = {};\n");
  const typo = runConfig() as any;
  typo.train = { ...typo.train, globalBatchInstance: 4 };
  writeFileSync(p("typo.ts"), `export default ${JSON.stringify(typo)};\n`);
  writeTinyTokens(p("tokens.u32"));
  writeFileSync(p("big.u32"), Uint32Array.from({ length: 16 * 40 }, () => 300));
  writeFileSync(p("empty.u32"), new Uint8Array(0));
  writeFileSync(p("odd.bin"), new Uint8Array(7));
  writeFileSync(p("mix.txt"), "a,part-0.npy\n");
  writeFileSync(p("doc.txt"), "hello world\n");
  writeFileSync(p("task.jsonl"), `{"context":"The capital of France is","choices":[" Paris"," Rome"],"gold":0}\n`);
  writeFileSync(p("bad-task.jsonl"), `{"context":"a","choices":[" b"," c"],"gold":0}\n{"context":"a","choices":[" b"," c"],"gold":5}\n`);
  writeFileSync(p("afile"), "a file, not a folder\n");
  mkdirSync(p("notckpt"));
  writeFileSync(p("notckpt", "readme.txt"), "not a checkpoint\n");
  mkdirSync(p("nonempty"));
  writeFileSync(p("nonempty", "keep.txt"), "mine\n");
  mkdirSync(p("prepared"));
  writeFileSync(p("prepared", "part-00000.npy"), new Uint8Array(8));
  saveCheckpoint(p("ckpt"), "stage1-step3-tokens1B", { model: ModelConfigSchema.parse(model), trainState: { step: 3 }, tensors: { model: arena(model, 1) } });
  saveCheckpoint(p("ckpt-other"), "stage1-step3-tokens1B", { model: ModelConfigSchema.parse(other), trainState: { step: 3 }, tensors: { model: arena(other, 2) } });
  exportHf(ModelConfigSchema.parse(model), arena(model, 1), p("hf"), { dtype: "f32" });
  cpSync(p("hf"), p("hf-noconfig"), { recursive: true });
  rmSync(p("hf-noconfig", "config.json"));
  const shard = readdirSync(p("hf")).find((f) => f.endsWith(".safetensors"))!;
  cpSync(p("hf"), p("hf-badheader"), { recursive: true });
  const bytes = readFileSync(p("hf", shard));
  bytes.set(new TextEncoder().encode("{garbage"), 8); // the JSON header starts at byte 8
  writeFileSync(p("hf-badheader", shard), bytes);
  cpSync(p("hf"), p("hf-trunc"), { recursive: true });
  truncateSync(p("hf-trunc", shard), bytes.length - 100);
  setupOlmoCoreBadInputs(p);
  setupInputBadInputs(p);
  stopPeerStores = startPeerStores();
  setupRunUxBadInputs(p);
  // a run folder held by a live trainer (this test process stands in for it)
  mkdirSync(runDir("locked"), { recursive: true });
  writeFileSync(join(runDir("locked"), "train.lock"), JSON.stringify({ pid: process.pid, host: hostname(), pidStart: null, since: "now" }));
  // a finished 2-step run, copied for the resume rows (each its own folder: rows run in parallel)
  const made = Bun.spawnSync([process.execPath, "src/cli/main.ts", ...train("at2")], { cwd: root, env: { ...process.env, OLMO_BACKEND: "cpu", OLMO_THREADS: "1" }, stderr: "pipe" });
  if (made.exitCode !== 0) throw new Error(`making the at2 run failed: ${made.stderr}`);
  for (const id of ["at2-stop", "at2-past", "at2-partial", ...RUN_UX_AT2_COPIES]) cpSync(runDir("at2"), runDir(id), { recursive: true });
  editMeta(join(runDir("at2-partial"), "stage1-step2-tokens1B"), (m) => (m.tensors = m.tensors.filter((t: any) => !(t.group === "adam_m" && t.name === "model.layers.0.self_attn.q_proj.weight"))));
  // checkpoints with a damaged or crafted index (re-checksummed: the validation must catch these)
  const full = { model: arena(model, 1), adamM: arena(model, 2), adamV: arena(model, 3).map(Math.abs) };
  for (const id of ["ckpt-flip", "ckpt-huge", "ckpt-negoff", "ckpt-type", "ckpt-step", "ckpt-bad"]) {
    saveCheckpoint(p(id), "stage1-step3-tokens1B", { model: ModelConfigSchema.parse(model), trainState: { step: 3 }, tensors: full });
  }
  const metaFile = p("ckpt-flip", "stage1-step3-tokens1B", "metadata.msgpack");
  const mb = readFileSync(metaFile);
  mb[mb.length - 20] ^= 0x08;
  writeFileSync(metaFile, mb);
  editMeta(p("ckpt-huge", "stage1-step3-tokens1B"), (m) => (m.tensors[0].shape = [2 ** 20, 2 ** 20]));
  editMeta(p("ckpt-negoff", "stage1-step3-tokens1B"), (m) => (m.tensors[1].slices[0].offset = -8));
  editMeta(p("ckpt-type", "stage1-step3-tokens1B"), (m) => (m.tensors[0].name = 7));
  editMeta(p("ckpt-step", "stage1-step3-tokens1B"), (m) => (m.trainState.step = "abc"));
  const dataFile = p("ckpt-bad", "stage1-step3-tokens1B", "model.rank0.bin");
  const db = readFileSync(dataFile);
  db[db.length - 100] ^= 0x01;
  writeFileSync(dataFile, db);
  writeFileSync(p("bad.jsonl"), '{"text": "fine"}\n{not json\n');
  // HF folders: numeric weight_map values, NaN and Inf weights
  cpSync(p("hf"), p("hf-numeric"), { recursive: true });
  const idx = JSON.parse(readFileSync(p("hf", "model.safetensors.index.json"), "utf8"));
  writeFileSync(p("hf-numeric", "model.safetensors.index.json"), JSON.stringify({ ...idx, weight_map: Object.fromEntries(Object.keys(idx.weight_map).map((k) => [k, 1])) }));
  const spoiled = (id: string, name: string, at: number, value: number) => {
    const a = arena(model, 1);
    const spec = paramSpecs(ModelConfigSchema.parse(model)).find((x) => x.name === name)!;
    a[spec.offset + at] = value;
    exportHf(ModelConfigSchema.parse(model), a, p(id), { dtype: "f32" });
  };
  spoiled("hf-nan", "model.layers.0.mlp.up_proj.weight", 5, NaN);
  spoiled("hf-inf", "lm_head.weight", 0, Infinity);
  writeFileSync(p("tokens.u16"), Uint16Array.from({ length: 16 * 40 }, (_, i) => (i * 7 + (i >> 3)) % 250));
  // "disk full": a 160 KiB tmpfs holds the run folder's config and metrics but not a checkpoint
  mkdirSync(p("full"));
  fullFsMounted = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", p("full")], { stderr: "pipe" }).exitCode === 0;

  // run every row, a few at a time
  const queue = rows.map((r, i) => [r, i] as const);
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const [r, i] = next;
      if (r.skip?.()) continue;
      if (r.hide) {
        const h = runWithoutLibraries(r.hide, [process.execPath, "src/cli/main.ts", ...r.args()], { cwd: root, env: { ...process.env, OLMO_BACKEND: "cpu", ...r.env } });
        results[i] = { code: h.code, stderr: h.err };
        continue;
      }
      const proc = Bun.spawn([process.execPath, "src/cli/main.ts", ...r.args()], {
        cwd: root, env: { ...process.env, OLMO_BACKEND: "cpu", ...r.env }, stdout: "pipe", stderr: "pipe",
      });
      const [stderr] = await Promise.all([new Response(proc.stderr).text(), new Response(proc.stdout).text()]);
      results[i] = { code: await proc.exited, stderr };
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  // OLMO_BAD_INPUT_DUMP=file.json: the observed messages, to regenerate docs/bad-input.md
  const dump = process.env.OLMO_BAD_INPUT_DUMP;
  if (dump) writeFileSync(dump, JSON.stringify(rows.map((r, i) => ({ mistake: r.mistake, env: r.env, args: r.args().map((a) => a.replaceAll(D, "…")), stderr: results[i]?.stderr.trim().replaceAll(D, "…") })), null, 1));
}, 120_000);

afterAll(() => {
  stopPeerStores();
  if (fullFsMounted) Bun.spawnSync(["umount", p("full")]);
  rmSync(D, { recursive: true, force: true });
});

/** Folders a failed command may have created must hold no temp folders, checkpoints or partial files. */
function debris(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { recursive: true }) as string[]) {
    // the fixtures' checkpoints (ckpt*/, runs/at2*/) are inputs, not outputs of a failed command
    if (/\.tmp-/.test(e) || (/(^|\/)stage\d/.test(e) && !/^(ckpt(-[a-z]+)?|runs\/at2(-[a-z]+)?)\//.test(e))) out.push(e);
  }
  return out;
}

describe("bad input: one stderr line, exit code 2, nothing half-written", () => {
  test(`the table has at least 25 mistakes (${rows.length})`, () => {
    expect(rows.length).toBeGreaterThanOrEqual(25);
    const doc = readFileSync(join(root, "docs/bad-input.md"), "utf8");
    for (const r of rows) expect(doc).toContain(`| ${r.mistake} |`);
  });

  for (const [i, r] of rows.entries()) {
    test(r.mistake, () => {
      const why = r.skip?.();
      if (why) {
        console.warn(`skipped "${r.mistake}": ${why}`);
        return;
      }
      const res = results[i];
      const lines = res.stderr.trim().split("\n");
      expect({ code: res.code, lines: lines.length }).toEqual({ code: 2, lines: 1 });
      expect(lines[0]).toStartWith("olmo: error: ");
      expect(lines[0]).toMatch(r.message);
      for (const a of r.absent?.() ?? []) expect({ path: a, exists: existsSync(a) }).toEqual({ path: a, exists: false });
      expect(debris(D)).toEqual([]);
    });
  }
});
