// The bad-input rows of hostile and unlucky inputs (docs/bad-input.md): nesting deep enough to
// overflow a recursive step, keys that are Object.prototype's names, paths the filesystem cannot
// take or that hold a newline, geometry that claims more than its bytes, a mix or task file that is
// a folder, special-token text in a task. Each is one line, exit code 2, and leaves no output and
// no run folder.
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fixtureTensors, tensorBlob, viewBlob, writeStepFolder } from "../checkpoint/olmo-core/crafted-geometry.ts";
import type { BadInputRow } from "./bad-input-row.ts";

const FIXTURE = resolve(import.meta.dir, "../checkpoint/olmo-core/fixtures/step5");

interface Ctx {
  p: (...x: string[]) => string;
  /** `olmo train …/cfg.ts --run-dir=…/runs/<id> --quiet ...extra` */
  train: (id: string, ...extra: string[]) => string[];
  runDir: (id: string) => string;
}

const deep = (n: number) => `${"[".repeat(n)}${"]".repeat(n)}`;

export function inputRows({ p, train, runDir }: Ctx): BadInputRow[] {
  return [
    { mistake: "OLMo-core config.json nested 100,000 levels deep", args: () => ["import-olmo-core", p("oc-deep"), "--out", p("imp-oc-deep")],
      message: /oc-deep\/config\.json: not valid JSON \(nested deeper than 512 levels\)/, absent: () => [p("imp-oc-deep")] },
    { mistake: "HF config.json nested 100,000 levels deep", args: () => ["import-hf", p("hf-deep"), "--out", p("imp-hf-deep")],
      message: /hf-deep\/config\.json: not valid JSON \(nested deeper than 512 levels\)/, absent: () => [p("imp-hf-deep")] },
    { mistake: "safetensors dtype that is an Object.prototype key", args: () => ["import-hf", p("hf-proto"), "--out", p("imp-hf-proto")],
      message: /hf-proto\/.*\.safetensors: not a valid safetensors file: tensor lm_head\.weight has unknown dtype "toString"/, absent: () => [p("imp-hf-proto")] },
    { mistake: "config override through __proto__", args: () => train("proto", "--__proto__.polluted=1"),
      message: /train: --__proto__\.polluted on the command line is not a config field/, absent: () => [runDir("proto")] },
    { mistake: "a path holding a newline", args: () => train("newline", `--data.paths=["${p("new")}\\nline.u32"]`),
      message: /token file not found: .*new\\nline\.u32$/, absent: () => [runDir("newline")] },
    { mistake: "run folder name over 255 bytes", args: () => ["train", p("cfg.ts"), `--run-dir=${p("runs", "r".repeat(300))}`, "--quiet"],
      message: /run folder ".*": the name "r{24}…" is 300 bytes, more than the 255 a file name may have/, absent: () => [p("runs", "r".repeat(300))] },
    { mistake: "run folder near PATH_MAX", args: () => ["train", p("cfg.ts"), `--run-dir=${p("runs", "deep", ...Array.from({ length: 20 }, () => "d".repeat(200)))}`, "--quiet"],
      message: /run folder ".*" is \d{4} bytes long; with what is written below it \(up to \d+ bytes more\) it passes the 4096-byte path limit; choose a shorter path/,
      absent: () => [p("runs", "deep")] },
    { mistake: "output name too long for its staging name", args: () => ["export-hf", p("ckpt", "stage1-step3-tokens1B"), "--out", p("x".repeat(250))],
      message: /HF export: output ".*": its name is written first as "<name>\.tmp-<pid>" \(up to 265 bytes\), more than the 255 a file name may have/, absent: () => [p("x".repeat(250))] },
    { mistake: "mix file that is a folder", args: () => train("mixdir", "--data.paths=[]", `--data.mixFile=${p("mixdir")}`, `--data.baseDir=${p()}`),
      message: /mix file .*mixdir: is a folder, not a file/, absent: () => [runDir("mixdir")] },
    { mistake: "task file that is a folder", args: () => ["eval", "--from", p("hf"), "--task", p("mixdir")],
      message: /task file .*mixdir: is a folder, not a file/ },
    { mistake: "eval task holding special-token text", args: () => ["eval", "--from", p("hf"), "--task", p("special.jsonl")],
      message: /special\.jsonl:1: the text holds the special token <\|endoftext\|>, which is not allowed here/ },
    { mistake: "OLMo-core blob that is a stride-0 view", args: () => ["import-olmo-core", p("oc-stride0"), "--out", p("imp-oc-stride0")],
      message: /oc-stride0\/model_and_optim\/__0_0\.distcp: item model\.embeddings\.weight at 0: not a valid torch\.save archive: a tensor \[256,32\] \(strides 0,0\) claims 8192 elements from a storage of 1/,
      absent: () => [p("imp-oc-stride0")] },
    { mistake: "OLMo-core items that share bytes", args: () => ["import-olmo-core", p("oc-shared"), "--out", p("imp-oc-shared")],
      message: /oc-shared\/model_and_optim\/__0_0\.distcp: items model\.embeddings\.weight \(bytes 0\.\.\d+\) and model\.embeddings\.weight \(bytes 0\.\.\d+\) share bytes/,
      absent: () => [p("imp-oc-shared")] },
    { mistake: "refused run under a checkpoint root that does not exist yet", args: () => ["train", p("cfg.ts"), `--run-dir=${p("ckroot", "stage2-ingredient3")}`, "--quiet", `--data.paths=["${p("missing.u32")}"]`],
      message: /token file not found: .*missing\.u32/, absent: () => [p("ckroot")] },
  ];
}

function withEmbedding(chunks: ReturnType<typeof fixtureTensors>[number]["chunks"]) {
  return fixtureTensors().map((t) => (t.fqn === "model.embeddings.weight" ? { ...t, chunks } : t));
}

/** The inputs of the rows above, in the table's folder (it already holds cfg.ts, hf/, ckpt/). */
export function setupInputBadInputs(p: (...x: string[]) => string): void {
  cpSync(FIXTURE, p("oc-deep"), { recursive: true });
  const cfg = JSON.parse(readFileSync(join(FIXTURE, "config.json"), "utf8"));
  writeFileSync(p("oc-deep", "config.json"), JSON.stringify(cfg).replace(/}$/, `,"extra":${deep(100_000)}}`));
  cpSync(p("hf"), p("hf-deep"), { recursive: true });
  const hf = readFileSync(p("hf", "config.json"), "utf8").trim();
  writeFileSync(p("hf-deep", "config.json"), hf.replace(/}$/, `,"extra":${deep(100_000)}}`));
  // one tensor's dtype rewritten to "toString": the header grows, the data offsets stay relative
  cpSync(p("hf"), p("hf-proto"), { recursive: true });
  const shard = readdirSync(p("hf")).find((f) => f.endsWith(".safetensors"))!;
  const st = readFileSync(p("hf", shard));
  const n = Number(new DataView(st.buffer, st.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(st.subarray(8, 8 + n)));
  header["lm_head.weight"].dtype = "toString";
  const hb = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + hb.length + st.length - 8 - n);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  out.set(st.subarray(8 + n), 8 + hb.length);
  writeFileSync(p("hf-proto", shard), out);
  mkdirSync(p("mixdir"));
  writeFileSync(p("special.jsonl"), `${JSON.stringify({ context: "a<|endoftext|>b", choices: [" c", " d"], gold: 0 })}\n`);
  writeStepFolder(p("oc-stride0"), withEmbedding([{ offsets: [0, 0], sizes: [256, 32], blob: viewBlob([256, 32], [0, 0], Float32Array.of(0.5), 256 * 32 * 4) }]));
  const half = tensorBlob([128, 32], new Float32Array(128 * 32).fill(0.25));
  writeStepFolder(p("oc-shared"), withEmbedding([{ offsets: [0, 0], sizes: [128, 32], blob: half }, { offsets: [128, 0], sizes: [128, 32], storage: { relativePath: "__0_0.distcp", offset: 0, length: half.length } }]));
}
