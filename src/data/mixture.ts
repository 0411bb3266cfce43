// Source mixtures (OLMo-core data/source_mixture.py SourceMixtureDatasetConfig.build): take a
// requested number of tokens split over sources by target ratio, each source bounded by
// max_source_fraction · max_repetition_ratio of what it has. The result is a list of (file, tokens)
// that openDataset() reads as token-limited files: each file's first `tokens` tokens, as
// NumpyFSLDatasetMixture does (its per-file instance sampling is computed but unused at HEAD; the
// reads are prefixes). A source taken more than once appears again in the list, like OLMo's
// "list the file twice" upsampling.
import { UserError } from "../errors.ts";
import { dtypeBytes, statTokenFile, type TokenDtype } from "./token-file.ts";

export interface MixtureSource {
  name: string;
  /** share of the requested tokens, in (0, 1]; all sources sum to 1 */
  targetRatio: number;
  paths: string[];
  /** ≥ 1: how many times the source may be repeated (upsampling); default 1 */
  maxRepetitionRatio?: number;
  /** (0, 1]: the largest fraction of the source that may be used; default 1 */
  maxSourceFraction?: number;
}

export interface MixturePlan {
  paths: string[];
  labels: string[];
  /** tokens to use from the start of each path (a multiple of seqLen) */
  tokenLimits: number[];
  /** per source: available tokens, requested tokens and what was finally selected */
  sources: { name: string; available: number; needed: number; selected: number }[];
}

export function planSourceMixture(opts: {
  sources: MixtureSource[];
  requestedTokens: number;
  globalBatchTokens: number;
  seqLen: number;
  dtype: TokenDtype;
}): MixturePlan {
  const { sources, requestedTokens, globalBatchTokens, seqLen, dtype } = opts;
  if (!(requestedTokens > 0)) throw new UserError(`mixture: requested tokens must be > 0, got ${requestedTokens}`);
  if (sources.length === 0) throw new UserError("mixture: no sources given");
  const sum = sources.reduce((a, s) => a + s.targetRatio, 0);
  if (Math.abs(sum - 1) > 1e-6) throw new UserError(`mixture: target ratios must sum to 1, got ${sum} (${sources.map((s) => `${s.name}=${s.targetRatio}`).join(", ")})`);
  if (globalBatchTokens % seqLen !== 0) throw new UserError(`mixture: global batch ${globalBatchTokens} is not a multiple of the sequence length ${seqLen}`);
  const w = dtypeBytes(dtype);
  const sizes = new Map<string, number>();
  const tokensOf = (p: string): number => {
    let n = sizes.get(p);
    if (n === undefined) sizes.set(p, (n = Math.floor(statTokenFile(p) / w)));
    return n;
  };
  interface PathTokens { path: string; label: string; tokens: number; max: number }
  const all: PathTokens[] = [];
  const report: MixturePlan["sources"] = [];
  for (const s of sources) {
    const rep = s.maxRepetitionRatio ?? 1, frac = s.maxSourceFraction ?? 1;
    if (!(s.targetRatio > 0 && s.targetRatio <= 1)) throw new UserError(`mixture source ${s.name}: target ratio must be in (0, 1], got ${s.targetRatio}`);
    if (!(rep >= 1)) throw new UserError(`mixture source ${s.name}: max repetition ratio must be >= 1, got ${rep}`);
    if (!(frac > 0 && frac <= 1)) throw new UserError(`mixture source ${s.name}: max source fraction must be in (0, 1], got ${frac}`);
    if (s.paths.length === 0) throw new UserError(`mixture source ${s.name}: no paths`);
    const available = s.paths.reduce((a, p) => a + tokensOf(p), 0);
    const needed = Math.floor(requestedTokens * s.targetRatio);
    const max = Math.floor(available * frac * rep);
    if (max < needed) {
      throw new UserError(`mixture source ${s.name} cannot supply its share: needs ${needed} tokens (${s.targetRatio} of ${requestedTokens}) but may give at most ${max} ` +
        `(${available} available × fraction ${frac} × repetition ${rep}); add files, raise max repetition, or lower its ratio`);
    }
    report.push({ name: s.name, available, needed, selected: 0 });
    // take ratio > 1 is split into whole repetitions plus a remainder, each over all paths.
    let remaining = needed / available;
    const ratios: number[] = [];
    while (remaining > 0) {
      ratios.push(Math.min(1, remaining));
      remaining -= Math.min(1, remaining);
    }
    for (const r of ratios) {
      for (const p of s.paths) all.push({ path: p, label: s.name, tokens: Math.ceil(tokensOf(p) * r), max: tokensOf(p) });
    }
  }
  // Whole instances per path, then Hamilton (largest remainder) so the total is exactly the
  // instances of ceil(requested / global batch) steps, never above a path's capacity.
  const requestedInstances = Math.ceil(requestedTokens / globalBatchTokens) * (globalBatchTokens / seqLen);
  const cap = all.map((p) => Math.floor(p.max / seqLen));
  const inst = all.map((p, i) => Math.min(Math.floor(p.tokens / seqLen), cap[i]));
  const rem = all.map((p, i) => (inst[i] < cap[i] ? (p.tokens % seqLen) / seqLen : 0));
  const total = () => inst.reduce((a, b) => a + b, 0);
  let extra = requestedInstances - total();
  if (extra > 0) {
    const eligible = inst.map((_, i) => i).filter((i) => inst[i] < cap[i]);
    if (eligible.length) {
      const base = Math.floor(extra / eligible.length);
      if (base) for (const i of eligible) inst[i] += Math.min(base, cap[i] - inst[i]);
      extra = requestedInstances - total();
      if (extra > 0) {
        // Python sorts (remainder, index) tuples descending: ties go to the larger index.
        const cands = eligible.filter((i) => inst[i] < cap[i]).sort((a, b) => rem[b] - rem[a] || b - a);
        for (const i of cands.slice(0, extra)) inst[i] += 1;
      }
    }
  }
  const tokenLimits = inst.map((n) => n * seqLen);
  all.forEach((p, i) => (report.find((r) => r.name === p.label)!.selected += tokenLimits[i]));
  return { paths: all.map((p) => p.path), labels: all.map((p) => p.label), tokenLimits, sources: report };
}
