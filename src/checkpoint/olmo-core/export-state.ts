// What an export writes beside the tensors, decided once: the param groups, train/rank0.pt and
// config.json. Two kinds of checkpoint come in:
//   - an import of an OLMo-core folder that was not trained since (no run config): everything as the
//     folder had it (its kept items, trainer state and config.json), checked again before writing;
//   - a checkpoint olmo trained (a run config; the CLI hands its settings over as
//     OlmoCoreRunSettings): the run's own state, written as OLMo-core writes it — Trainer.state_dict
//     and NumpyFSLDataLoader.state_dict (train/trainer.py, data/data_loader.py at d7301e62) with the
//     run's max_steps, sequence_length and max_target_sequence_length, which a resuming OLMo-core
//     compares with its dataset's — and param groups either optimizer loads (param-groups.ts), in the
//     form of the OLMo-core optimizer the run started from when it started from one.
import { UserError } from "../../errors.ts";
import type { LoaderState } from "../../data/cursor.ts";
import { type OlmoCoreRunSettings, olmoCoreConfigJson } from "./config.ts";
import type { OlmoCoreOrigin } from "./import.ts";
import { type KeptItem, isKeptTensor } from "./items.ts";
import { paramGroupItems } from "./param-groups.ts";
import { type OlmoCoreTrainState, checkKeptTrainState } from "./train-state.ts";
import type { CheckpointMeta } from "../native/format.ts";

export interface ExportState {
  /** the items beyond the model and the Adam state (param groups); empty for a weights-only export */
  items: KeptItem[];
  trainState: OlmoCoreTrainState;
  config: Record<string, unknown>;
}

/** The OLMo-core origin a native checkpoint carries: an import's, or a run's that started from an OLMo-core folder. */
export function originOf(meta: CheckpointMeta): OlmoCoreOrigin | undefined {
  const o = (meta.trainState as Record<string, unknown> | undefined)?.olmoCore;
  return typeof o === "object" && o !== null ? (o as OlmoCoreOrigin) : undefined;
}

/**
 * `names`: OLMo-core parameter names, the embedding first; `withOptim`: the checkpoint holds
 * optimizer state (param groups are written only then); `originItems`: the origin's kept items,
 * already checked (export.ts).
 */
export function exportState(meta: CheckpointMeta, names: string[], withOptim: boolean, run: OlmoCoreRunSettings | undefined, originItems: KeptItem[], where: string): ExportState {
  const origin = originOf(meta);
  const ts = meta.trainState as Record<string, unknown>;
  const step = typeof ts.step === "number" ? ts.step : 0, tokens = typeof ts.tokensProcessed === "number" ? ts.tokensProcessed : 0;
  if (run) {
    const items = withOptim ? paramGroupItems(names, run.paramGroups, originItems, where) : [];
    const compiled = items.some((it) => it.fqn.endsWith(".lr") && isKeptTensor(it));
    return { items, trainState: runTrainState(step, tokens, meta, run, where), config: olmoCoreConfigJson(meta.model, run.dataSeed, run, compiled) };
  }
  if (withOptim && originItems.length === 0) throw new UserError(`export-olmo-core: ${where} has optimizer state but no optimizer settings to write its param groups from`);
  const kept = origin?.trainer ? checkKeptTrainState(origin.trainer, `${where} (its imported OLMo-core trainer state)`) : null;
  const trainState: OlmoCoreTrainState = kept
    ? { ...kept, step, tokensSeen: tokens }
    : { step, tokensSeen: tokens, maxSteps: null, epoch: 1, worldSize: 1, dataLoader: null };
  const dataSeed = kept?.dataLoader?.seed ?? null;
  const config = origin?.config && typeof origin.config === "object" ? origin.config : olmoCoreConfigJson(meta.model, dataSeed);
  return { items: withOptim ? originItems : [], trainState, config };
}

/**
 * The trainer state of a run olmo trained. OLMo-core's loader counts batches within the epoch and
 * resets at each epoch's end; ours counts over the run, and records the epoch length to convert.
 * The dataset fingerprint is OLMo-core's ("v1.1", which OLMo-core checks) when the run computed it
 * (it needs the tokenizer's EOS and PAD ids), else version "olmo-bun", which OLMo-core only warns about.
 */
function runTrainState(step: number, tokens: number, meta: CheckpointMeta, run: OlmoCoreRunSettings, where: string): OlmoCoreTrainState {
  const c = meta.dataCursor as Partial<LoaderState> | null;
  const nat = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  // no data position (a checkpoint not written by a training run): OLMo-core can take its weights and
  // optimizer state (load_trainer_state=False), not continue its data
  if (c == null) return { step, tokensSeen: tokens, maxSteps: run.maxSteps, epoch: 1, worldSize: meta.layout?.world ?? 1, dataLoader: null };
  if (!nat(c.seed) || !nat(c.batchesProcessed) || !nat(c.epoch) || (c.batchesPerEpoch !== undefined && !nat(c.batchesPerEpoch))) {
    throw new UserError(`export-olmo-core: ${where} has no data position of a run (dataCursor) to write OLMo-core's data-loader state from`);
  }
  const epoch = Math.max(1, c.epoch!);
  // without the epoch length (checkpoints before it was recorded) only a position in epoch 1 converts
  if (epoch > 1 && !c.batchesPerEpoch) throw new UserError(`export-olmo-core: ${where} is in epoch ${epoch} but does not record its epoch length; OLMo-core's per-epoch position cannot be computed`);
  const within = c.batchesProcessed! - (epoch - 1) * (c.batchesPerEpoch ?? 0);
  return {
    step, tokensSeen: tokens, maxSteps: run.maxSteps, epoch, worldSize: meta.layout?.world ?? 1,
    dataLoader: {
      seed: c.seed!, epoch, batchesProcessed: within, tokensProcessed: within * run.globalBatchTokens,
      fingerprint: c.olmoCoreFingerprint ?? c.fingerprint ?? "", fingerprintVersion: c.olmoCoreFingerprint ? "v1.1" : "olmo-bun",
      datasetType: "fsl", sequenceLength: run.sequenceLength, maxTargetSequenceLength: run.maxTargetSequenceLength,
    },
  };
}
