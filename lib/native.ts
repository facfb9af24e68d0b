/**
 * Loads the compiled addon with node-gyp-build: a matching binary from
 * prebuilds/<platform>-<arch>/ first, then the local build in build/Release.
 * The shape of the binding is declared here once; everything else uses these types.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface NativeProgress {
  stage: 'config' | 'weights' | 'ready';
  loadedBytes: number;
  totalBytes: number;
}

export interface NativeModelInfo {
  device: 'cpu' | 'cuda';
  threads: number;
  weightBytes: number;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  layerPattern: string;
  maxPositionEmbeddings: number;
  bosTokenId: number;
  eosTokenId: number;
  /** Identity of the weights (16 hex digits); saved sequence states carry it. */
  fingerprint: string;
}

/** A saved sequence state's header (native/engine/state_file.h). */
export interface NativeStateFileInfo {
  /** Fingerprint of the model that saved it. */
  model: string;
  pattern: string;
  /** Tokens the sequence had absorbed. */
  length: number;
  /** The saved sequence's context size. */
  contextSize: number;
  meta: string;
  fileBytes: number;
}

export interface NativeSequence {
  prefill(tokens: Int32Array, allLogits: boolean): Promise<Float32Array>;
  decode(tokens: Int32Array): Promise<Float32Array>;
  /** contextSize: the copy's (>= the length; omitted = the same). */
  clone(contextSize?: number): Promise<NativeSequence>;
  reset(): Promise<void>;
  /** Writes the state to `path` (atomically); resolves to the file's size. contextSize: recorded as the loading default. */
  saveState(path: string, contextSize: number, meta: string): Promise<number>;
  dispose(): void;
}

/** The engine's memory facts (native/engine/engine.h MemoryPlan); bytes. */
export interface NativeMemoryPlan {
  device: 'cpu' | 'cuda';
  weightBytes: number;
  stateBytesPerSequence: number;
  kvBytesPerToken: number;
  kvCacheType: 'f32' | 'bf16';
  activationBytes: number;
  workspaceBytes: number;
  maxBatchTokens: number;
  deviceTotalBytes: number;
  deviceFreeBytes: number;
}

/**
 * One row's sampling for decodeBatch (native/engine/sampler.h SamplingParams):
 * the JS Sampler's options after defaults, its RNG state and the step's inputs.
 * Made by Sampler.toNative(); the native sampler then draws exactly what
 * Sampler.sample() would.
 */
export interface NativeSamplingRow {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repetitionPenalty: number;
  presencePenalty: number;
  frequencyPenalty: number;
  penaltyWindow: number;
  /** Tokens generated so far (only needed with a penalty). */
  history?: Int32Array;
  /** Logit bias, applied in this order. */
  biasIds?: Int32Array;
  biasValues?: Float64Array;
  /** Banned ids (present, even empty, exactly when the JS call had a mask). */
  mask?: Int32Array;
  /** xoshiro128** state, 4 words (lib/chat/rng.ts). */
  rng: Uint32Array;
  /** Also return this row's logits. */
  logits?: boolean;
}

/** decodeBatch's result when it was given sampling rows. */
export interface NativeSampledBatch {
  /** The sampled id per row; -1 for rows without sampling or whose sampling failed. */
  ids: Int32Array;
  /** Each row's RNG state after its draw, 4 words per row. */
  rngStates: Uint32Array;
  /** [rows, vocab] for the rows that asked for logits (null sampling, or `logits: true`), in batch order. */
  logits: Float32Array;
  /** Per row, why its sampling failed (e.g. every token masked); absent when none failed. */
  errors?: (string | undefined)[];
}

export interface NativeModel {
  info(): NativeModelInfo;
  memoryPlan(): NativeMemoryPlan;
  createSequence(contextSize: number): NativeSequence;
  /** A sequence with the state saved in `path`; contextSize 0 = the saved one. */
  loadSequence(path: string, contextSize: number): Promise<NativeSequence>;
  evaluate(tokens: Int32Array): Promise<Float32Array>;
  /** One forward pass advancing every sequence by its token; logits [sequences, vocab]. */
  decodeBatch(sequences: NativeSequence[], tokens: Int32Array): Promise<Float32Array>;
  /**
   * The same forward pass, then each row with a sampling entry is sampled on the
   * worker thread (rows in parallel); rows with null get their logits as before.
   */
  decodeBatch(
    sequences: NativeSequence[],
    tokens: Int32Array,
    sampling: (NativeSamplingRow | null)[],
  ): Promise<NativeSampledBatch>;
  decodeBatch(
    sequences: NativeSequence[],
    tokens: Int32Array,
    sampling?: (NativeSamplingRow | null)[],
  ): Promise<Float32Array | NativeSampledBatch>;
  dispose(): void;
}

export interface NativeRuntimeInfo {
  cpu: { avx2: boolean; fma: boolean; f16c: boolean };
  cuda: {
    compiled: boolean;
    available: boolean;
    /** Why CUDA cannot be used ('' when it can). */
    reason: string;
    /** GPU architectures compiled in, e.g. "80-real;86-real;89-real;90a-real;90-virtual". */
    archs: string;
    driverVersion: number;
    runtimeVersion: number;
    devices: { index: number; name: string; computeCapability: string; totalBytes: number; freeBytes: number; multiprocessors: number }[];
  };
}

export interface NativeBinding {
  loadModel(
    dir: string,
    options: { device: string; threads: number; maxBatchTokens: number; kvCache: string },
    onProgress?: (p: NativeProgress) => void,
  ): Promise<NativeModel>;
  runtimeInfo(): NativeRuntimeInfo;
  /** Reads and checks a saved state's header (not the state). */
  inspectStateFile(path: string): Promise<NativeStateFileInfo>;
  /**
   * @internal Test hook, not API: samples row i of `logits` ([params.length, vocab])
   * with params[i] on the calling thread, as decodeBatch's sampling does.
   */
  sampleRows(
    logits: Float32Array,
    params: NativeSamplingRow[],
  ): { ids: Int32Array; rngStates: Uint32Array; errors: (string | null)[] };
}

/** The package root: the nearest ancestor directory holding our package.json. */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        if (JSON.parse(fs.readFileSync(pj, 'utf8')).name === 'nemotron-node') return dir;
      } catch {
        // not ours; keep looking
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('nemotron-node: cannot find the package root from ' + __dirname);
    dir = parent;
  }
}

let binding: NativeBinding | undefined;
let bindingPath: string | undefined;

export function native(): NativeBinding {
  if (!binding) {
    const root = packageRoot();
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const load = require('node-gyp-build') as ((dir: string) => NativeBinding) & { resolve?: (dir: string) => string };
    try {
      bindingPath = load.resolve ? load.resolve(root) : undefined;
      binding = load(root);
    } catch (err) {
      throw new Error(
        'nemotron-node: the native addon could not be loaded. No prebuilt binary matches ' +
          `${process.platform}-${process.arch} and no local build was found. Build it with ` +
          '`npm run build:native` (needs cmake and a C++17 compiler).',
        { cause: err },
      );
    }
  }
  return binding;
}

/** Path of the loaded .node file (after the first native() call). */
export function nativeBindingPath(): string | undefined {
  return bindingPath;
}
