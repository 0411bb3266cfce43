// The instances of a perplexity evaluation set: rows of T tokens with their targets (the next
// token, or IGNORE where nothing is predicted), cut from token files in one of two layouts:
//
//  - "documents": OLMo-core's NumpyPaddedFSLDataset (allenai/OLMo-core @ d7301e62,
//    src/olmo_core/data/numpy_dataset.py), the layout its in-loop LMEvaluator requires
//    (src/olmo_core/train/callbacks/evaluator_callback.py, LMEvaluatorCallbackConfig.build): one
//    instance per document — a document runs to its EOS, inclusive; tokens after a file's last EOS
//    are no document (data/utils.py iter_document_indices) — cut to its first T tokens
//    (segment_documents_into_instances: min(length, T); the rest is dropped) and padded. Padded
//    positions carry no label (label_mask); attention is causal, so the pad value never reaches a
//    scored position. A one-token document has no label and is left out (it adds nothing).
//  - "windows": consecutive T-token windows of each file, the tail dropped (NumpyFSLDataset, the
//    training layout and what `olmo eval --data` has always cut); the last position has no label.
//
// Labels are the inputs shifted by one, as in training. maxTokens caps a set: instances are taken
// in file order while their tokens (the document's, or T per window) stay within the cap.
import { UserError } from "../errors.ts";
import { Dataset } from "./dataset.ts";
import { type TokenDtype, TokenFile } from "./token-file.ts";

/** an unscored position: the model skips every negative target (torch's ignore_index, -100, as OLMo uses) */
export const IGNORE_TARGET = -100;
export type EvalLayout = "documents" | "windows";

export interface EvalInstances {
  readonly seqLen: number;
  /** number of instances */
  readonly count: number;
  /** tokens the set predicts (labels) over all instances */
  readonly labelTokens: number;
  /** instance i into tokens_BT / targets_BT at element offset `at` (T elements each) */
  fill(i: number, tokens_BT: Int32Array, targets_BT: Int32Array, at: number): void;
}

export interface EvalInstanceOptions {
  paths: string[];
  dtype: TokenDtype;
  seqLen: number;
  vocabSize: number;
  layout: EvalLayout;
  /** document separator for "documents" (dolma2 / cl100k: 100257) */
  eosId: number;
  maxTokens?: number;
  /** names the set in error messages */
  source: string;
}

export function openEvalInstances(o: EvalInstanceOptions): EvalInstances {
  if (o.paths.length === 0) throw new UserError(`${o.source}: no token files`);
  let inst: EvalInstances;
  try {
    inst = o.layout === "documents" ? new DocumentInstances(o) : new WindowInstances(o);
  } catch (e) {
    // every message names the set
    if (e instanceof UserError && !e.message.startsWith(o.source)) throw new UserError(`${o.source}: ${e.message}`);
    throw e;
  }
  if (inst.count === 0) {
    throw new UserError(`${o.source}: no ${o.layout === "documents" ? "document (a run of tokens ending in EOS " + o.eosId + ")" : `window of ${o.seqLen} tokens`}` +
      ` fits${o.maxTokens !== undefined ? ` within maxTokens ${o.maxTokens}` : ""} in ${o.paths.join(", ")}`);
  }
  return inst;
}

/** One instance per EOS-terminated document, its first T tokens; labels only inside the document. */
class DocumentInstances implements EvalInstances {
  readonly seqLen: number;
  readonly count: number;
  readonly labelTokens: number;
  private readonly files: TokenFile[];
  /** per instance: file index, first token, tokens (≤ T) */
  private readonly fileOf: Uint32Array;
  private readonly startOf: Float64Array;
  private readonly lengthOf: Uint32Array;

  constructor(o: EvalInstanceOptions) {
    const T = (this.seqLen = o.seqLen);
    this.files = o.paths.map((p) => new TokenFile(p, o.dtype));
    const file: number[] = [], start: number[] = [], length: number[] = [];
    let used = 0, labels = 0;
    scan: for (const [f, tf] of this.files.entries()) {
      const tok = tf.tokens();
      let docStart = 0;
      for (let i = 0; i < tok.length; i++) {
        const t = tok[i];
        if (t >= o.vocabSize) {
          throw new UserError(`${tf.path}: token id ${t} at token offset ${i} is >= vocab size ${o.vocabSize}; wrong dtype or tokenizer?`);
        }
        if (t !== o.eosId) continue;
        const n = Math.min(i + 1 - docStart, T);
        if (n >= 2) {
          if (o.maxTokens !== undefined && used + n > o.maxTokens) break scan;
          file.push(f);
          start.push(docStart);
          length.push(n);
          used += n;
          labels += n - 1;
        }
        docStart = i + 1;
      }
    }
    this.fileOf = Uint32Array.from(file);
    this.startOf = Float64Array.from(start);
    this.lengthOf = Uint32Array.from(length);
    this.count = file.length;
    this.labelTokens = labels;
  }

  fill(i: number, tokens: Int32Array, targets: Int32Array, at: number): void {
    const T = this.seqLen, n = this.lengthOf[i], s = this.startOf[i];
    const src = this.files[this.fileOf[i]].tokens();
    for (let t = 0; t < n; t++) tokens[at + t] = src[s + t];
    // the padding repeats the document's last token (any id in the vocabulary would do: unscored)
    tokens.fill(src[s + n - 1], at + n, at + T);
    for (let t = 0; t < n - 1; t++) targets[at + t] = src[s + t + 1];
    targets.fill(IGNORE_TARGET, at + n - 1, at + T);
  }
}

/** Consecutive windows of T tokens of each file (the training layout); the last position is unscored. */
class WindowInstances implements EvalInstances {
  readonly seqLen: number;
  readonly count: number;
  readonly labelTokens: number;
  private readonly dataset: Dataset;

  constructor(o: EvalInstanceOptions) {
    this.seqLen = o.seqLen;
    this.dataset = new Dataset({ paths: o.paths, dtype: o.dtype, seqLen: o.seqLen, vocabSize: o.vocabSize });
    const n = this.dataset.numInstances;
    this.count = o.maxTokens === undefined ? n : Math.min(n, Math.floor(o.maxTokens / o.seqLen));
    this.labelTokens = this.count * (o.seqLen - 1);
    // every token checked against the vocabulary now, not at the first evaluation hours in
    const row = new Int32Array(o.seqLen);
    for (let i = 0; i < this.count; i++) this.dataset.readInstance(i, row, 0);
  }

  fill(i: number, tokens: Int32Array, targets: Int32Array, at: number): void {
    const T = this.seqLen;
    this.dataset.readInstance(i, tokens, at);
    for (let t = 0; t < T - 1; t++) targets[at + t] = tokens[at + t + 1];
    targets[at + T - 1] = IGNORE_TARGET;
  }
}
