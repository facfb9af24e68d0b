/**
 * Memory a model needs at a context size, from its config, mirroring how the
 * CPU engine allocates (native/engine/sequence_state.cpp, nemotron_h.cpp):
 *  - weights: the safetensors data, used in place;
 *  - per sequence: per Mamba layer the conv window ((K-1) * conv_dim floats) and
 *    the SSM state (heads * head_dim * state floats), fp32; per attention layer a
 *    K and a V cache of ctx * kv_heads * head_dim fp32 (the engine grows them
 *    geometrically, so this is the size once the context is full);
 *  - activations: the engine's scratch for one forward pass of maxBatchTokens
 *    rows. This one is an estimate (attention scores and kernel temporaries are
 *    left out).
 */
export interface ModelDims {
  pattern: string;
  hiddenSize: number;
  vocabSize: number;
  mambaHeads: number;
  mambaHeadDim: number;
  nGroups: number;
  ssmStateSize: number;
  convKernel: number;
  attentionHeads: number;
  kvHeads: number;
  headDim: number;
  intermediateSize: number;
  maxPositionEmbeddings: number;
}

const num = (c: Record<string, unknown>, key: string, fallback?: number): number => {
  const v = c[key];
  if (typeof v === 'number') return v;
  if (fallback !== undefined) return fallback;
  throw new Error(`config.json has no numeric "${key}"`);
};

export function dimsFromConfig(c: Record<string, unknown>): ModelDims {
  const pattern = typeof c.hybrid_override_pattern === 'string' ? c.hybrid_override_pattern : '';
  if (!pattern) throw new Error('config.json has no "hybrid_override_pattern" (not a NemotronH model?)');
  const hidden = num(c, 'hidden_size');
  const heads = num(c, 'num_attention_heads', 0);
  return {
    pattern,
    hiddenSize: hidden,
    vocabSize: num(c, 'vocab_size'),
    mambaHeads: num(c, 'mamba_num_heads'),
    mambaHeadDim: num(c, 'mamba_head_dim'),
    nGroups: num(c, 'n_groups'),
    ssmStateSize: num(c, 'ssm_state_size'),
    convKernel: num(c, 'conv_kernel'),
    attentionHeads: heads,
    kvHeads: num(c, 'num_key_value_heads', heads),
    headDim: num(c, 'head_dim', num(c, 'attention_head_dim', heads ? hidden / heads : 0)),
    intermediateSize: num(c, 'intermediate_size'),
    maxPositionEmbeddings: num(c, 'max_position_embeddings', 4096),
  };
}

export function layerCounts(pattern: string): { mamba: number; attention: number; mlp: number } {
  const count = (ch: string) => [...pattern].filter((c) => c === ch).length;
  return { mamba: count('M'), attention: count('*'), mlp: count('-') };
}

export interface MemoryPlan {
  contextSize: number;
  maxBatchTokens: number;
  weightBytes: number;
  /** Conv windows + SSM states of all Mamba layers, one sequence. */
  mambaStateBytes: number;
  /** K + V caches of all attention layers at a full context, one sequence, of kvCacheType elements. */
  kvCacheBytes: number;
  kvCacheType: 'f32' | 'bf16';
  perSequenceBytes: number;
  /** Estimate: forward-pass scratch for maxBatchTokens rows. */
  activationBytes: number;
  /** weights + one sequence + activations. */
  totalBytes: number;
}

const F32 = 4;

/**
 * kvCache: the KV caches' element type, as loadModel's kvCache resolves it ('auto' = bf16 on CUDA, f32 on the CPU).
 */
export function memoryPlan(
  d: ModelDims,
  weightBytes: number,
  contextSize: number,
  maxBatchTokens = 512,
  kvCache: 'f32' | 'bf16' = 'f32',
): MemoryPlan {
  const layers = layerCounts(d.pattern);
  const dInner = d.mambaHeads * d.mambaHeadDim;
  const convDim = dInner + 2 * d.nGroups * d.ssmStateSize;
  const mambaPerLayer = ((d.convKernel - 1) * convDim + d.mambaHeads * d.mambaHeadDim * d.ssmStateSize) * F32;
  const kvPerLayer = 2 * contextSize * d.kvHeads * d.headDim * (kvCache === 'bf16' ? 2 : F32);
  const mambaStateBytes = layers.mamba * mambaPerLayer;
  const kvCacheBytes = layers.attention * kvPerLayer;
  // The engine's scratch (NemotronH::ensure_scratch): 3 hidden-wide rows, the widest
  // intermediate, 3 auxiliary rows and the logits, per token of a batch.
  const rows = Math.min(maxBatchTokens, contextSize);
  const qWidth = d.attentionHeads * d.headDim;
  const inProj = 2 * dInner + 2 * d.nGroups * d.ssmStateSize + d.mambaHeads;
  const wide = Math.max(inProj, d.intermediateSize, qWidth);
  const aux = Math.max(convDim, dInner, qWidth, d.kvHeads * d.headDim);
  const activationBytes = rows * (3 * d.hiddenSize + wide + 3 * aux + d.vocabSize) * F32;
  const perSequenceBytes = mambaStateBytes + kvCacheBytes;
  return {
    contextSize,
    maxBatchTokens,
    weightBytes,
    mambaStateBytes,
    kvCacheBytes,
    kvCacheType: kvCache,
    perSequenceBytes,
    activationBytes,
    totalBytes: weightBytes + perSequenceBytes + activationBytes,
  };
}
