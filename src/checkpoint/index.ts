// The checkpoint module's public API (what train/ and cli/ call). Host buffers and tensor specs
// only: nothing here touches a backend.
export { checkpointName, findLatestCheckpoint, listCheckpoints, parseCheckpointName, pruneCheckpoints, isCompleteCheckpoint } from "./naming.ts";
export { saveCheckpoint, readCheckpointMeta, NativeWriter, FORMAT_VERSION, type CheckpointContents, type CheckpointMeta, type SaveOptions } from "./native.ts";
export { loadCheckpoint, verifyCheckpoint, NativeSource, NativeReader, type LoadedCheckpoint, type LoadOptions } from "./native-read.ts";
export { loadHfModel, exportHf, HfSource, HfSink, readHfConfig, hfConfigJson, modelConfigFromHf, type HfExportOptions } from "./hf.ts";
export { SafetensorsReader, SafetensorsWriter } from "./safetensors.ts";
export { openSource, loadModelWeights, copyModel, soup, soupWeights, checkSoupable } from "./soup.ts";
export type { TensorSource, TensorSink, OnProgress } from "./source.ts";
export { openOlmoCoreCheckpoint, isOlmoCoreCheckpoint, OlmoCoreReader, type OlmoCoreGroup, type OlmoCoreOpenOptions } from "./olmo-core-read.ts";
export { importOlmoCore, OlmoCoreSource } from "./olmo-core-import.ts";
export { exportOlmoCore, type ParamGroupValues } from "./olmo-core-export.ts";
export type { OlmoCoreTrainState, OlmoCoreDataLoaderState } from "./olmo-core-train-state.ts";
