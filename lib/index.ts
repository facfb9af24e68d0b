/**
 * nemotron-node: NVIDIA Nemotron-Nano-9B-v2 and the NemotronH family from Node.js.
 */
export { loadModel, Model, type ModelConfig, type MemoryReport } from './model';
export { PromptCache, type PromptCacheOptions, type PromptCacheStats, type CachedPrefill } from './prompt-cache';
export { Sequence, type PrefillOptions, type DecodeOptions, type DecodeSampleOptions, type SampledToken } from './sequence';
export type { LoadModelOptions, CreateSequenceOptions, LoadProgress } from './options';
export {
  NemotronError,
  ModelLoadError,
  InvalidArgumentError,
  ContextOverflowError,
  DeviceUnavailableError,
  OutOfMemoryError,
  DisposedError,
  StateFileError,
} from './errors';
export { inspectStateFile, type StateFileInfo } from './state-file';
export { parseHfJson } from './hf-json';
export { getRuntimeInfo, type RuntimeInfo } from './runtime-info';
export {
  ChatSession,
  type ChatSessionOptions,
  type SendOptions,
  type ChatReply,
  type ChatEvent,
  type ChatUsage,
  type ChatSnapshot,
} from './chat/session';
export { Tokenizer } from './chat/tokenizer';
export { IncrementalDetokenizer } from './chat/detokenizer';
export { ChatTemplate, renderChat, type ChatMessage } from './chat/template';
export type { ThinkingBudget } from './chat/thinking';
export type { ToolDefinition, ToolSet, ToolCall } from './chat/tools';
export type { ToolCallDelta } from './chat/tool-call-stream';
export type { FinishReason } from './chat/turn';
export { Sampler, type SamplingOptions } from './chat/sampling';
export { createServer, type CreateServerOptions, type NemotronServer } from './server';
