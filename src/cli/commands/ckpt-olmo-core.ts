// `olmo ckpt info` rows for an OLMo-core checkpoint folder: format, global step, tokens seen, data
// seed, model, every tensor with its dtype, shape and chunk count, the AdamW step counters, the
// param-group layout; without --quick every tensor is read once (all chunks' blobs parsed).
import { openOlmoCoreCheckpoint } from "../../checkpoint/olmo-core/read.ts";
import { Scratch } from "../../checkpoint/io.ts";
import { DTYPE_BYTES } from "../../checkpoint/torch/torch-save.ts";
import { gb, modelLine } from "../text.ts";

export function olmoCoreInfo(path: string, quick: boolean, progress: (done: number, total: number) => void, t0: number, configPath?: string): [string, string][] {
  const r = openOlmoCoreCheckpoint(path, { configPath });
  try {
    const rows: [string, string][] = [];
    const files = new Set([...r.meta.tensors.values()].flatMap((t) => t.chunks.map((c) => c.storage.relativePath)));
    rows.push(["format", `OLMo-core (torch.distributed.checkpoint, ${files.size} .distcp files, ${r.meta.storageInfoClass || "no items"})`]);
    const ts = r.trainState;
    rows.push(["step", ts ? String(ts.step) : "? (no train/rank0.pt)"]);
    rows.push(["tokens", ts ? String(ts.tokensSeen) : "?"]);
    const dl = ts?.dataLoader;
    rows.push(["data", `seed ${r.dataSeed ?? "?"}${dl ? `, epoch ${dl.epoch ?? "?"}, ${dl.batchesProcessed} batches / ${dl.tokensProcessed} tokens processed, fingerprint ${dl.fingerprintVersion} ${dl.fingerprint.slice(0, 12)}…` : ""}`]);
    rows.push(["model", modelLine(r.model)]);
    const tensors = [...r.meta.tensors.values()];
    const bytes = tensors.reduce((a, t) => a + t.size.reduce((x, y) => x * y, 1) * DTYPE_BYTES[t.dtype], 0);
    rows.push(["tensors", `${tensors.length} (${tensors.filter((t) => t.fqn.startsWith("model.")).length} model), ${gb(bytes)} stored; ${r.meta.bytes.size} other items`]);
    for (const t of tensors) rows.push(["", `${t.fqn}  ${t.dtype} [${t.size.join(", ")}]${t.chunks.length > 1 ? `  ${t.chunks.length} chunks` : ""}`]);
    if (r.hasOptimizerState()) {
      const counts = new Map<number, number>();
      for (const s of r.specs) {
        const c = r.stepCounter(s.name) ?? NaN;
        counts.set(c, (counts.get(c) ?? 0) + 1);
      }
      rows.push(["adam step", [...counts].map(([c, n]) => `${c} (${n} tensors)`).join(", ") + `; param groups ${r.paramGroupFormat() ?? "none"}`]);
      // what an import keeps and an export writes back, checked as they do (plain data only)
      const kept = r.keptItems();
      const lr = kept.find((it) => it.fqn.endsWith(".lr"));
      rows.push(["param groups", `${kept.length} items kept as they are${lr ? `; lr ${"dtype" in lr ? `a ${lr.dtype} tensor (a compiled optimizer)` : "a float"}` : ""}`]);
    } else {
      rows.push(["adam step", "no optimizer state (weights only)"]);
    }
    if (!quick) {
      const scratch = new Scratch();
      const total = r.specs.reduce((a, s) => a + s.numel, 0) * 4 * (r.hasOptimizerState() ? 3 : 1);
      let done = 0, n = 0;
      for (const g of r.hasOptimizerState() ? (["model", "adam_m", "adam_v"] as const) : (["model"] as const)) {
        for (const s of r.specs) {
          r.read(g, s.name, scratch.f32(s.numel));
          done += s.numel * 4;
          n++;
          progress(done, total);
        }
      }
      rows.push(["checksums", `none in DCP; ${n} tensors read and decoded in ${((performance.now() - t0) / 1000).toFixed(1)} s`]);
    }
    return rows;
  } finally {
    r.close();
  }
}
