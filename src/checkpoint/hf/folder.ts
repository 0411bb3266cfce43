// Hugging Face interop for Olmo2ForCausalLM: config.json <-> ModelConfig, a streaming source over
// an HF folder, a streaming sink that writes one, and the two whole-arena helpers the rest of the
// code calls (loadHfModel for `olmo eval --from-hf`, exportHf). Parameter names are HF's already
// (src/model/params.ts), so weights map name for name.
//
// Vocabulary: HF's vocab_size is the embedding's row count (100352 for dolma2, already padded).
// Export writes paddedVocab(m); import sets vocabSize = vocab_size and pads to 128 when it is a
// multiple of 128 (else pads by 1), so the padded size — the only thing shapes depend on — is the
// same after any number of round trips.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../../errors.ts";
import { parseJson } from "../../input.ts";
import { type StagedDir, stageOutputDir } from "../../output-dir.ts";
import { DOLMA2_EOS, DOLMA2_PAD, type ModelConfig, ModelConfigSchema, paddedVocab } from "../../model/config.ts";
import { type ParamSpec, paramSpecs, totalParams } from "../../model/params.ts";
import { SafetensorsReader, SafetensorsWriter } from "./safetensors.ts";
import { holdsDolma2, writeDolma2Tokenizer } from "./tokenizer.ts";
import type { OnProgress, TensorSink, TensorSource } from "../source.ts";

/** transformers version stamped into the files we write (Olmo2 landed in 4.47). */
const TRANSFORMERS_VERSION = "4.48.0";

function tokenIds(m: ModelConfig): { bos: number | null; eos: number | null; pad: number | null } {
  // The released OLMo-2 configs use dolma2's <|endoftext|> as BOS and EOS and <|pad|> as PAD; a
  // smaller (toy) vocabulary cannot hold those ids.
  return holdsDolma2(m) ? { bos: DOLMA2_EOS, eos: DOLMA2_EOS, pad: DOLMA2_PAD } : { bos: null, eos: null, pad: null };
}

export function hfConfigJson(m: ModelConfig, dtype: "bf16" | "f32"): Record<string, unknown> {
  const ids = tokenIds(m);
  return {
    architectures: ["Olmo2ForCausalLM"],
    model_type: "olmo2",
    hidden_size: m.dModel,
    intermediate_size: m.ffnHidden,
    num_attention_heads: m.nHeads,
    num_key_value_heads: m.nKvHeads,
    num_hidden_layers: m.nLayers,
    rms_norm_eps: m.normEps,
    rope_theta: m.ropeTheta,
    rope_scaling: null,
    vocab_size: paddedVocab(m),
    max_position_embeddings: m.maxSeqLen,
    tie_word_embeddings: false,
    attention_bias: false,
    attention_dropout: 0.0,
    hidden_act: "silu",
    initializer_range: m.initStd,
    bos_token_id: ids.bos,
    eos_token_id: ids.eos,
    pad_token_id: ids.pad,
    torch_dtype: dtype === "bf16" ? "bfloat16" : "float32",
    use_cache: true,
    transformers_version: TRANSFORMERS_VERSION,
  };
}

export function generationConfigJson(m: ModelConfig): Record<string, unknown> {
  const ids = tokenIds(m);
  return { _from_model_config: true, bos_token_id: ids.bos, eos_token_id: ids.eos, pad_token_id: ids.pad, transformers_version: TRANSFORMERS_VERSION };
}

/** config.json of an Olmo2 model -> ModelConfig; anything we cannot represent is a one-line error. */
export function modelConfigFromHf(j: Record<string, any>, path: string): ModelConfig {
  const bad = (msg: string): never => {
    throw new UserError(`${path}: ${msg}`);
  };
  if (j.model_type !== "olmo2") bad(`model_type is ${JSON.stringify(j.model_type)}, expected "olmo2" (an OLMo-2 checkpoint)`);
  const int = (k: string): number => (Number.isInteger(j[k]) && j[k] > 0 ? j[k] : bad(`${k} must be a positive integer, got ${JSON.stringify(j[k])}`));
  if (j.tie_word_embeddings === true) bad("tie_word_embeddings is true; OLMo-2 uses untied embeddings");
  if (j.attention_bias === true) bad("attention_bias is true; OLMo-2 has no biases");
  if (j.rope_scaling != null) bad(`rope_scaling ${JSON.stringify(j.rope_scaling)} is not supported (OLMo-2 uses plain RoPE)`);
  if (j.hidden_act !== undefined && j.hidden_act !== "silu") bad(`hidden_act ${JSON.stringify(j.hidden_act)} is not supported (silu)`);
  const V = int("vocab_size");
  const parsed = ModelConfigSchema.safeParse({
    dModel: int("hidden_size"),
    nLayers: int("num_hidden_layers"),
    nHeads: int("num_attention_heads"),
    nKvHeads: j.num_key_value_heads == null ? int("num_attention_heads") : int("num_key_value_heads"),
    ffnHidden: int("intermediate_size"),
    vocabSize: V,
    vocabPadMultiple: V % 128 === 0 ? 128 : 1,
    maxSeqLen: j.max_position_embeddings ?? 4096,
    ropeTheta: j.rope_theta ?? 500_000,
    normEps: j.rms_norm_eps ?? 1e-6,
    initStd: j.initializer_range ?? 0.02,
  });
  if (!parsed.success) bad(`config does not describe a valid model: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return parsed.data!;
}

export function readHfConfig(dir: string): ModelConfig {
  const p = join(dir, "config.json");
  if (!existsSync(p)) throw new UserError(`${dir}: no config.json (not a Hugging Face model folder)`);
  let j: unknown;
  try {
    j = parseJson(readFileSync(p, "utf8"));
  } catch (e) {
    throw new UserError(`${p}: not valid JSON (${(e as Error).message.split("\n")[0]})`);
  }
  if (typeof j !== "object" || j === null) throw new UserError(`${p}: not a JSON object`);
  return modelConfigFromHf(j as Record<string, any>, p);
}

/** An HF folder as a tensor source. Every expected tensor's presence and shape is checked at open. */
export class HfSource implements TensorSource {
  readonly kind = "hf" as const;
  readonly config: ModelConfig;
  readonly specs: ParamSpec[];
  readonly trainState = {};
  private readonly st: SafetensorsReader;

  constructor(readonly path: string) {
    this.config = readHfConfig(path);
    this.specs = paramSpecs(this.config);
    this.st = SafetensorsReader.open(path);
    try {
      for (const s of this.specs) {
        const e = this.st.entries.get(s.name);
        if (!e) throw new UserError(`${path}: missing tensor ${s.name} (expected shape [${s.shape}])`);
        if (e.shape.join(",") !== s.shape.join(",")) {
          throw new UserError(`${e.file}: tensor ${s.name} has shape [${e.shape}], but config.json implies [${s.shape}]`);
        }
      }
    } catch (e) {
      this.st.close();
      throw e;
    }
  }

  read(name: string, out: Float32Array): void {
    this.st.read(name, out);
    this.checkFinite(name, out, 0);
  }

  /** Elements [start, start + out.length) of one tensor (a tensor-parallel rank's part). */
  readRange(name: string, start: number, out: Float32Array): void {
    this.st.readRange(name, start, out);
    this.checkFinite(name, out, start);
  }

  /** safetensors has no checksums; a weight that is NaN or ±Inf is damage (or a diverged model) either way. */
  private checkFinite(name: string, x: Float32Array, start: number): void {
    const i = firstNonFinite(x);
    if (i >= 0) throw new UserError(`${this.st.entry(name).file}: tensor ${name} holds ${x[i]} at element ${start + i}; refusing non-finite weights`);
  }

  close(): void {
    this.st.close();
  }
}

/** Index of the first NaN or ±Inf (exponent bits all ones), or -1. */
export function firstNonFinite(x: Float32Array): number {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < u.length; i++) if ((u[i] & 0x7f800000) === 0x7f800000) return i;
  return -1;
}

/** Read an HF Olmo2 folder into one fp32 arena in paramSpecs order. */
export function loadHfModel(dir: string, onProgress?: OnProgress): { config: ModelConfig; params: Float32Array } {
  const src = new HfSource(dir);
  try {
    const params = new Float32Array(totalParams(src.specs));
    let done = 0;
    for (const s of src.specs) {
      src.read(s.name, params.subarray(s.offset, s.offset + s.numel));
      done += s.numel * 4;
      onProgress?.(done, params.byteLength);
    }
    return { config: src.config, params };
  } finally {
    src.close();
  }
}

export interface HfExportOptions {
  dtype?: "bf16" | "f32";
  /** default 5 GB, as transformers' save_pretrained */
  maxShardBytes?: number;
}

/**
 * Writes an HF folder tensor by tensor: config.json, generation_config.json, dolma2's tokenizer files
 * (./tokenizer.ts; not for a vocabulary too small for its ids), shards, index. The folder is written
 * under a temporary name and appears whole at finish() (src/output-dir.ts); it must be new or empty.
 */
export class HfSink implements TensorSink {
  private readonly w: SafetensorsWriter;
  private readonly stage: StagedDir;
  /** whether the folder carries the tokenizer files */
  readonly tokenizer: boolean;

  constructor(readonly outDir: string, config: ModelConfig, opts: HfExportOptions = {}) {
    const dtype = opts.dtype ?? "bf16";
    this.stage = stageOutputDir(outDir, "HF export");
    const dir = this.stage.dir;
    try {
      writeFileSync(join(dir, "config.json"), JSON.stringify(hfConfigJson(config, dtype), null, 2) + "\n");
      writeFileSync(join(dir, "generation_config.json"), JSON.stringify(generationConfigJson(config), null, 2) + "\n");
      this.tokenizer = writeDolma2Tokenizer(dir, config);
      this.w = new SafetensorsWriter(dir, paramSpecs(config), { dtype, maxShardBytes: opts.maxShardBytes ?? 5e9 });
    } catch (e) {
      this.stage.abort();
      throw e;
    }
  }

  write(name: string, data: Float32Array): void {
    this.w.write(name, data);
  }

  finish(): string {
    this.w.finish();
    this.stage.commit();
    return this.outDir;
  }

  abort(): void {
    this.w.abort();
    this.stage.abort();
  }
}

/** Export a whole fp32 arena (paramSpecs order) as an HF folder. */
export function exportHf(config: ModelConfig, arena: Float32Array, outDir: string, opts: HfExportOptions = {}, onProgress?: OnProgress): string {
  const specs = paramSpecs(config);
  const total = totalParams(specs);
  if (arena.length !== total) throw new Error(`exportHf: arena has ${arena.length} elements, the config needs ${total}`);
  const sink = new HfSink(outDir, config, opts);
  try {
    let done = 0;
    for (const s of specs) {
      sink.write(s.name, arena.subarray(s.offset, s.offset + s.numel));
      done += s.numel * 4;
      onProgress?.(done, total * 4);
    }
    return sink.finish();
  } catch (e) {
    sink.abort();
    throw e;
  }
}
