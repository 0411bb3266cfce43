// Tensor parallelism: the TP plan table (every parameter's style, shard shapes, slices that tile the
// whole tensor exactly once, world-size-invariant init by slicing).
import { describe, expect, test } from "bun:test";
import { ModelConfigSchema, paddedVocab } from "../../src/model/config.ts";
import { initTensor } from "../../src/model/init.ts";
import { paramSpecs, totalParams } from "../../src/model/params.ts";
import { checkTpDivides, placeShard, sliceShard, tpLocalSpecs, tpPlan, tpShards } from "../../src/model/tp-plan.ts";

const m = ModelConfigSchema.parse({ dModel: 16, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnHidden: 32, vocabSize: 256, maxSeqLen: 64 });

describe("TP plan", () => {
  test("one table: name → style, from paramSpecs", () => {
    const plan = tpPlan(m);
    expect(plan.size).toBe(paramSpecs(m).length);
    const p = "model.layers.1";
    expect(plan.get("model.embed_tokens.weight")).toBe("vocab");
    expect(plan.get("lm_head.weight")).toBe("vocab");
    for (const n of ["q_proj", "k_proj", "v_proj", "q_norm", "k_norm"]) expect(plan.get(`${p}.self_attn.${n}.weight`)).toBe("colwise");
    expect(plan.get(`${p}.self_attn.o_proj.weight`)).toBe("rowwise");
    expect(plan.get(`${p}.mlp.gate_proj.weight`)).toBe("colwise");
    expect(plan.get(`${p}.mlp.up_proj.weight`)).toBe("colwise");
    expect(plan.get(`${p}.mlp.down_proj.weight`)).toBe("rowwise");
    for (const n of [`${p}.post_attention_layernorm.weight`, `${p}.post_feedforward_layernorm.weight`, "model.norm.weight"]) {
      expect(plan.get(n)).toBe("replicated");
    }
  });

  test("tp = 1 is exactly paramSpecs", () => {
    expect(tpLocalSpecs(m, 1, 0)).toEqual(paramSpecs(m));
  });

  test("shard shapes at tp = 2 and a contiguous local arena", () => {
    const D = 4, V = paddedVocab(m);
    for (const r of [0, 1]) {
      const by = new Map(tpLocalSpecs(m, 2, r).map((s) => [s.name, s]));
      const p = "model.layers.0";
      expect(by.get(`${p}.self_attn.q_proj.weight`)!.shape).toEqual([2 * D, 16]);
      expect(by.get(`${p}.self_attn.k_proj.weight`)!.shape).toEqual([1 * D, 16]);
      expect(by.get(`${p}.self_attn.o_proj.weight`)!.shape).toEqual([16, 2 * D]);
      expect(by.get(`${p}.self_attn.q_norm.weight`)!.shape).toEqual([2 * D]);
      expect(by.get(`${p}.self_attn.k_norm.weight`)!.shape).toEqual([D]);
      expect(by.get(`${p}.mlp.gate_proj.weight`)!.shape).toEqual([16, 16]);
      expect(by.get(`${p}.mlp.down_proj.weight`)!.shape).toEqual([16, 16]);
      expect(by.get(`${p}.post_attention_layernorm.weight`)!.shape).toEqual([16]);
      expect(by.get("lm_head.weight")!.shape).toEqual([V / 2, 16]);
      // gate and up adjacent: one [2F/tp, C] GEMM
      expect(by.get(`${p}.mlp.up_proj.weight`)!.offset).toBe(by.get(`${p}.mlp.gate_proj.weight`)!.offset + 16 * 16);
      let off = 0;
      for (const s of tpLocalSpecs(m, 2, r)) { expect(s.offset).toBe(off); off += s.numel; }
    }
  });

  test("shards tile every sharded tensor exactly once; replicated ones whole on every rank", () => {
    const mm = m;
    const m4 = ModelConfigSchema.parse({ ...m, nKvHeads: 4 });
    for (const [m, tp] of [[mm, 2], [m4, 4]] as const) {
      const shards = Array.from({ length: tp }, (_, r) => tpShards(m, tp, r));
      shards[0].forEach((sh0, i) => {
        const full = Float32Array.from({ length: sh0.full.numel }, (_, k) => k + 1);
        const rebuilt = new Float32Array(full.length);
        let covered = 0;
        for (let r = 0; r < tp; r++) {
          const sh = shards[r][i];
          const part = sliceShard(sh, full);
          if (sh.full.tp === "replicated") expect(part).toEqual(full);
          covered += part.length;
          placeShard(sh, part, rebuilt);
        }
        expect(rebuilt).toEqual(full);
        expect(covered).toBe(sh0.full.tp === "replicated" ? tp * full.length : full.length);
      });
      const shardedTotal = shards[0].reduce((a, s) => a + (s.full.tp === "replicated" ? 0 : s.local.numel), 0);
      const replicated = paramSpecs(m).filter((s) => s.tp === "replicated").reduce((a, s) => a + s.numel, 0);
      expect(shardedTotal * tp + replicated).toBe(totalParams(paramSpecs(m)));
    }
  });

  test("q/k/v shards are whole heads and q_norm/k_norm match the rank's q/k columns", () => {
    const sh = tpShards(m, 2, 1);
    const q = sh.find((s) => s.full.name === "model.layers.0.self_attn.q_proj.weight")!;
    const qn = sh.find((s) => s.full.name === "model.layers.0.self_attn.q_norm.weight")!;
    expect([q.row0, q.rows]).toEqual([8, 8]); // heads 2,3 of 4 (head dim 4)
    expect([qn.col0, qn.cols]).toEqual([8, 8]);
    const o = sh.find((s) => s.full.name === "model.layers.0.self_attn.o_proj.weight")!;
    expect([o.row0, o.rows, o.col0, o.cols]).toEqual([0, 16, 8, 8]);
  });

  test("init is TP-size invariant: the whole tensor generated from (seed, name), then sliced", () => {
    const whole = paramSpecs(m).map((s) => { const a = new Float32Array(s.numel); initTensor(s, a, 0.02, 5); return a; });
    for (const r of [0, 1]) {
      tpShards(m, 2, r).forEach((sh, i) => {
        const part = sliceShard(sh, whole[i]);
        const again = new Float32Array(sh.full.numel);
        initTensor(sh.full, again, 0.02, 5);
        expect(sliceShard(sh, again)).toEqual(part);
      });
    }
  });

  test("a TP size that does not divide the heads / FFN / vocab is a user error naming it", () => {
    expect(() => checkTpDivides(m, 3)).toThrow("tensor parallelism tp=3 must divide model.nHeads (4)");
    expect(() => checkTpDivides(m, 4)).toThrow("tp=4 must divide model.nKvHeads (2)");
    expect(() => checkTpDivides(m, 0)).toThrow("must be a positive integer");
    expect(() => checkTpDivides(m, 2)).not.toThrow();
  });
});
