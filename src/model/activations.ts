// The activation memory of one micro-batch: every buffer the model keeps for its backward, its
// size, and which ones a layer's recompute mode drops. One owner for this knowledge: Olmo2 reserves
// its arenas from activationLayout(), and `olmo plan` sums the same list (src/train/plan.ts).
//
// Per layer l (N = B*T tokens), saved for the backward (see src/model/olmo2.ts):
//   x      [N,C]   residual stream entering the layer (always kept: the recompute starts here)
//   qRaw   [N,cq]  x Wq^T (before q_norm)     kRaw [N,ck]   v [N,ck]
//   q, k           after QK-norm and RoPE      qRstd, kRstd [N]
//   att    [N,cq]  attention output, lse [B,h,T]
//   a      [N,C]   att Wo^T (before post_attention_layernorm), aRstd [N]
//   h      [N,C]   x + norm(a)
//   gu     [N,2F]  h [Wgate;Wup]^T             sw [N,F] silu(gate)*up
//   f      [N,C]   sw Wdown^T (before post_feedforward_layernorm), fRstd [N]
//
// Recompute modes (config train.recompute, one per layer), after OLMo-core's activation
// checkpointing (allenai/OLMo-core, src/olmo_core/nn/transformer/config.py,
// TransformerActivationCheckpointingMode, and TransformerModel.apply_activation_checkpointing in
// src/olmo_core/nn/transformer/model.py, commit fa6c5014c9f6e9ee789da2d9c20d5126fee8df0d):
//   none       keep every buffer above
//   attention  keep x and the attention output a onward; recompute qRaw … lse from x in the
//              backward (OLMo-core "selected_modules" wrapping each block's attention module)
//   block      keep only x; recompute the whole layer forward in the backward (OLMo-core "full",
//              or "selected_blocks" for every block_interval-th block when given per layer)
// Dropped buffers of all recomputing layers share one set of scratch buffers ("r.<name>"): the
// forward of such a layer writes there, and its backward first recomputes them there.
import type { RecomputeMode } from "./config.ts";
import { Arena } from "./layout.ts";


export const LAYER_BUFFERS = ["x", "qRaw", "kRaw", "v", "q", "k", "att", "lse", "a", "h", "gu", "sw", "f", "qRstd", "kRstd", "aRstd", "fRstd"] as const;
export type LayerBuffer = (typeof LAYER_BUFFERS)[number];

/** the attention module's internals: what "attention" recomputes */
export const ATTENTION_BUFFERS: readonly LayerBuffer[] = ["qRaw", "kRaw", "v", "q", "k", "att", "lse", "qRstd", "kRstd"];

const RECOMPUTED: Record<RecomputeMode, ReadonlySet<LayerBuffer>> = {
  none: new Set(),
  attention: new Set(ATTENTION_BUFFERS),
  block: new Set(LAYER_BUFFERS.filter((b) => b !== "x")),
};

/** true when a layer in `mode` drops `buf` from memory and recomputes it in the backward */
export function isRecomputed(mode: RecomputeMode, buf: LayerBuffer): boolean {
  return RECOMPUTED[mode].has(buf);
}

/** The per-layer modes of a config value: one mode for every layer, or a list of nLayers. */
export function resolveRecompute(r: RecomputeMode | readonly RecomputeMode[] | undefined, nLayers: number): RecomputeMode[] {
  if (r === undefined) return Array(nLayers).fill("none");
  if (typeof r === "string") return Array(nLayers).fill(r);
  if (r.length !== nLayers) throw new Error(`recompute lists ${r.length} modes for ${nLayers} layers`);
  return [...r];
}

/** The widths of one rank's micro-batch (this rank's shard under TP). */
export interface ActDims {
  B: number;
  T: number;
  C: number;
  /** head dim */
  D: number;
  /** this rank's query heads, kv heads, SwiGLU width and vocabulary rows */
  h: number;
  k: number;
  F: number;
  vloc: number;
  /** rows of logits materialized at once */
  ceChunkRows: number;
  actBytes: number;
  /** the split-norm / vocab-parallel-CE statistics buffers exist (a TP communicator is given) */
  tp: boolean;
}

/** Rows of logits per chunk for a byte budget (≥ 1, ≤ N). */
export function ceChunkRowsFor(budgetBytes: number, vloc: number, actBytes: number, N: number): number {
  return Math.min(N, Math.max(1, Math.floor(budgetBytes / (vloc * actBytes))));
}

export function layerBufferBytes(d: ActDims): Record<LayerBuffer, number> {
  const N = d.B * d.T, a = d.actBytes, cq = d.h * d.D, ck = d.k * d.D;
  return {
    x: N * d.C * a, qRaw: N * cq * a, kRaw: N * ck * a, v: N * ck * a,
    q: N * cq * a, k: N * ck * a, att: N * cq * a, lse: d.B * d.h * d.T * 4,
    a: N * d.C * a, h: N * d.C * a, gu: N * 2 * d.F * a, sw: N * d.F * a, f: N * d.C * a,
    qRstd: N * 4, kRstd: N * 4, aRstd: N * 4, fRstd: N * 4,
  };
}

export type BufferList = [name: string, bytes: number][];

/**
 * Every buffer of the two arenas in reservation order: `acts` (kept from the forward to the
 * backward: per-layer `${l}.<name>` for what each layer keeps, `r.<name>` scratch for what
 * recomputing layers drop, then the head, loss rows, logits chunk and RoPE tables) and `bwd` (the
 * backward's gradient scratch, only when training).
 */
export function activationLayout(d: ActDims, modes: readonly RecomputeMode[], training: boolean): { acts: BufferList; bwd: BufferList } {
  const N = d.B * d.T, a = d.actBytes, cq = d.h * d.D, ck = d.k * d.D;
  const sizes = layerBufferBytes(d);
  const acts: BufferList = [];
  modes.forEach((mode, l) => {
    for (const b of LAYER_BUFFERS) if (!isRecomputed(mode, b)) acts.push([`${l}.${b}`, sizes[b]]);
  });
  for (const b of LAYER_BUFFERS) if (modes.some((m) => isRecomputed(m, b))) acts.push([`r.${b}`, sizes[b]]);
  acts.push(["xL", N * d.C * a], ["xn", N * d.C * a], ["xnRstd", N * 4], ["tmpC", N * d.C * a], ["tokens", N * 4],
    ["targets", N * 4], ["ce", N * 4], ["lseRows", N * 4], ["logits", d.ceChunkRows * d.vloc * a]);
  // per-row statistics of the split norms (stat) and of the vocab-parallel CE (max in stat, local
  // max in stat2, then [Σ-exp | target logit] side by side in stat3 for one all-reduce)
  if (d.tp) acts.push(["stat", N * 4], ["stat2", N * 4], ["stat3", 2 * d.ceChunkRows * 4]);
  const ropeBytes = d.T * (d.D / 2) * 4;
  acts.push(["cos", ropeBytes], ["sin", ropeBytes]);
  const bwd: BufferList = training
    ? [["dx", N * d.C * a], ["dC", N * d.C * a], ["dq", N * cq * a], ["dk", N * ck * a], ["dv", N * ck * a],
      ["dgu", N * 2 * d.F * a], ["dsw", N * Math.max(d.F, cq) * a]]
    : [];
  return { acts, bwd };
}

/** Reserve a list in an arena (not yet allocated). */
export function reserveAll(arena: Arena, list: BufferList): Arena {
  for (const [name, bytes] of list) arena.reserve(name, bytes);
  return arena;
}

/** Bytes of both arenas as Olmo2 allocates them (alignment included). */
export function activationArenaBytes(d: ActDims, modes: readonly RecomputeMode[], training: boolean): number {
  const { acts, bwd } = activationLayout(d, modes, training);
  return reserveAll(new Arena(), acts).bytes + reserveAll(new Arena(), bwd).bytes;
}
