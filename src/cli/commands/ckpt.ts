// olmo ckpt info PATH [--quick]: what a checkpoint is (name, step, tokens, model) and whether it
// is intact (every tensor read once; native checksums verified).
import { existsSync } from "node:fs";
import { basename, join } from "node:path";
import { HfSource } from "../../checkpoint/hf/folder.ts";
import type { CheckpointMeta } from "../../checkpoint/native/format.ts";
import { NativeReader, stepCountersOf, verifyCheckpoint } from "../../checkpoint/native/read.ts";
import { isOlmoCoreCheckpoint } from "../../checkpoint/olmo-core/read.ts";
import { claimsOptimizer } from "../../checkpoint/native/validate.ts";
import { checkSavedCursor } from "../../data/cursor.ts";
import { METADATA_FILE, parseCheckpointName } from "../../checkpoint/naming.ts";
import { Scratch } from "../../checkpoint/io.ts";
import { UserError } from "../../errors.ts";
import { paramSpecs, totalParams } from "../../model/params.ts";
import type { CommandSpec } from "../args.ts";
import { checkpointArg } from "../checkpoint-arg.ts";
import { byteProgress, gb, modelLine } from "../text.ts";
import { olmoCoreInfo } from "./ckpt-olmo-core.ts";

/** The Adam step counters (optimizer state): one value for every tensor, or their range. */
function adamStepLine(m: CheckpointMeta, path: string): string {
  const names = paramSpecs(m.model).map((s) => s.name);
  const c = Object.values(stepCountersOf(m, path, names));
  const lo = Math.min(...c), hi = Math.max(...c);
  const what = lo === hi ? `${lo} (every tensor)` : `${lo}…${hi} (per tensor)`;
  const h = m.optim?.skipHistory;
  return what + (m.optim ? "" : " (from trainState.adamStep)") + (h ? `; skip-rule history of ${h.losses.length} steps` : "");
}

/** What a resume from this checkpoint restores (validated above, read below unless --quick). */
function resumeLine(m: CheckpointMeta): string {
  if (!claimsOptimizer(m)) return "weights only: no optimizer state, so it starts a run (checkpoint.loadPath), it does not resume one";
  const st = m.trainState as Record<string, unknown>;
  const counters = m.optim ? "per-tensor Adam step counters" : `Adam step ${st.adamStep ?? "?"}`;
  return `weights, Adam moments of every tensor, ${counters}, step ${st.step ?? "?"}, ${m.dataCursor != null ? "data cursor" : "no data cursor (data order restarts)"}`;
}

export const ckptCommand: CommandSpec = {
  name: "ckpt info",
  summary: "Describe a checkpoint (native, OLMo-core or HF) and verify it: name, step, tokens, model, tensors, checksums",
  usage: "olmo ckpt info PATH [--quick] [--config CFG]",
  options: [
    { name: "quick", type: "boolean", help: "skip reading the tensors (no checksum verification)" },
    { name: "config", type: "string", help: "an OLMo-core folder without config.json beside it: the experiment config.json to take the model from", metavar: "CFG" },
  ],
  async run(args) {
    if (args.positional.length !== 1) throw new UserError(`ckpt info takes one PATH, got ${args.positional.length}`);
    const path = checkpointArg(args.positional[0]);
    const quick = !!args.opts.quick;
    const rows: [string, string][] = [["path", path]];
    const t0 = performance.now();
    const p = byteProgress("verify");
    try {
      if (!existsSync(join(path, METADATA_FILE)) && isOlmoCoreCheckpoint(path)) {
        rows.push(...olmoCoreInfo(path, quick, p.cb, t0, args.opts.config as string | undefined));
      } else if (existsSync(join(path, METADATA_FILE)) || !existsSync(join(path, "config.json"))) {
        // the whole index is validated for what the checkpoint claims to hold (what a resume loads)
        const r = new NativeReader(path);
        const m = r.meta;
        r.close();
        if (m.dataCursor != null) {
          try {
            checkSavedCursor(m.dataCursor);
          } catch (e) {
            throw e instanceof UserError ? new UserError(`${path}: ${e.message}`) : e;
          }
        }
        const st = m.trainState as Record<string, unknown>;
        const parts = parseCheckpointName(m.name);
        const lz4 = m.tensors.some((t) => t.slices.some((s) => s.lz4));
        const groups = new Map<string, number>();
        for (const t of m.tensors) groups.set(t.group, (groups.get(t.group) ?? 0) + 1);
        rows.push(["format", `olmo-bun native v${m.version}${lz4 ? ", lz4" : ""}, layout tp=${m.layout.tp} dp=${m.layout.dp}`], ["name", m.name]);
        rows.push(["step", String(st.step ?? parts?.step ?? "?")]);
        rows.push(["tokens", st.tokensProcessed !== undefined ? `${st.tokensProcessed}` : parts ? `${parts.tokensB}B (from the name)` : "?"]);
        rows.push(["model", modelLine(m.model)]);
        const raw = m.tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1) * 4, 0);
        const stored = m.tensors.reduce((a, t) => a + t.slices.reduce((x, s) => x + s.length, 0), 0);
        rows.push(["tensors", `${m.tensors.length} (${[...groups].map(([g, n]) => `${n} ${g}`).join(", ")}), ${gb(raw)} fp32, ${gb(stored)} on disk`]);
        if (groups.has("adam_m")) rows.push(["adam step", adamStepLine(m, path)]);
        rows.push(["resume", resumeLine(m)]);
        if (!quick) {
          const v = verifyCheckpoint(path, p.cb);
          rows.push(["checksums", `ok: ${v.tensors} tensors verified in ${((performance.now() - t0) / 1000).toFixed(1)} s`]);
        }
      } else {
        const src = new HfSource(path);
        try {
          const parts = parseCheckpointName(basename(path));
          rows.push(["format", "Hugging Face safetensors (Olmo2ForCausalLM)"], ["name", basename(path)]);
          if (parts) rows.push(["step", String(parts.step)], ["tokens", `${parts.tokensB}B (from the name)`]);
          rows.push(["model", modelLine(src.config)]);
          rows.push(["tensors", `${src.specs.length}, ${gb(totalParams(src.specs) * 4)} as fp32`]);
          if (!quick) {
            const s = new Scratch();
            let done = 0;
            for (const t of src.specs) {
              src.read(t.name, s.f32(t.numel));
              done += t.numel * 4;
              p.cb(done, totalParams(src.specs) * 4);
            }
            rows.push(["checksums", `none in safetensors; every tensor read and decoded in ${((performance.now() - t0) / 1000).toFixed(1)} s`]);
          }
        } finally {
          src.close();
        }
      }
    } finally {
      p.bar?.done();
    }
    for (const [k, v] of rows) console.log(k === "" ? `  ${v}` : `${k.padEnd(10)} ${v}`);
  },
};
