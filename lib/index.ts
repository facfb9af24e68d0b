/**
 * nemotron-node: NVIDIA Nemotron-Nano-9B-v2 and the NemotronH family from Node.js.
 */
export { loadModel, Model, type ModelConfig } from './model';
export { Sequence, type PrefillOptions } from './sequence';
export type { LoadModelOptions, CreateSequenceOptions, LoadProgress } from './options';
export {
  NemotronError,
  ModelLoadError,
  InvalidArgumentError,
  ContextOverflowError,
  DeviceUnavailableError,
  OutOfMemoryError,
  DisposedError,
} from './errors';
export { parseHfJson } from './hf-json';
export { getRuntimeInfo, type RuntimeInfo } from './runtime-info';
