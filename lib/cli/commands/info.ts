/**
 * `nemotron info [--model DIR] [--context-size N] [--json]`: what this machine
 * and the loaded binary can do, and for a model directory its size and the
 * memory it needs at a context size. Nothing is loaded: weights are counted from
 * the safetensors headers.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { parseHfJson } from '../../hf-json';
import { defaultBudget } from '../../model';
import { getRuntimeInfo, type RuntimeInfo } from '../../runtime-info';
import { parseOrExit } from '../args';
import { queryGpus } from '../gpu-query';
import { dimsFromConfig, layerCounts, memoryPlan, type MemoryPlan } from '../memory-plan';
import { formatBytes } from '../progress';
import { summarizeWeights, type WeightSummary } from '../safetensors-header';

const spec = {
  name: 'info',
  summary: 'Runtime (binary, CPU features, CUDA, GPUs) and, with --model, parameter count, weight bytes and memory needs.',
  options: {
    model: { kind: 'string', value: 'DIR', help: 'a NemotronH model directory (config.json + safetensors)' },
    'context-size': { kind: 'number', integer: true, min: 1, help: 'context size for the memory plan (default: min(max_position_embeddings, 32768))' },
    'max-batch-tokens': { kind: 'number', integer: true, min: 1, help: 'tokens per forward pass for the activation estimate (default 512)' },
    json: { kind: 'boolean', help: 'print one JSON object' },
  },
} as const;

const ESTIMATE_NOTE =
  'weights and per-sequence state are exact for either engine (fp32 recurrent state; KV cache at a full context, ' +
  'fp32 on the CPU and bf16 on CUDA unless loadModel\'s kvCache says otherwise, it grows as a sequence lengthens); ' +
  'activations are an estimate (on CUDA the kernels\' workspaces come on top, tens of MiB at the 9B shape: ' +
  'model.memory.workspaceBytes once loaded); each extra concurrent sequence adds its own state';

interface ModelReport {
  dir: string;
  modelType: unknown;
  layerPattern: string;
  layers: { total: number; mamba: number; attention: number; mlp: number };
  parameters: number;
  weightBytes: number;
  weights: WeightSummary;
  /** On the CPU (fp32 KV cache, the engine's default there). */
  memory: MemoryPlan & { note: string };
  /** On CUDA (bf16 KV cache, the engine's default there). */
  cudaMemory: MemoryPlan;
  /** How many sequences of the context the default admission budget admits, per device (see Model.memory). */
  fits: Array<{ where: string; budgetBytes: number; sequences: number }>;
}

/** The loaded model's default admission budget (lib/model.ts), applied to a device before loading. */
function capacity(where: string, device: 'cpu' | 'cuda', total: number, free: number, m: MemoryPlan) {
  // Before loading, a GPU's free memory still includes what the weights will take.
  const freeAfterLoad = device === 'cuda' ? free - m.weightBytes : free;
  const budget = defaultBudget({
    device,
    weightBytes: m.weightBytes,
    activationBytes: m.activationBytes,
    deviceTotalBytes: total,
    deviceFreeBytes: freeAfterLoad,
  }).bytes;
  return { where, budgetBytes: budget, sequences: Math.floor(budget / m.perSequenceBytes) };
}

function runtimeReport(): { runtime: RuntimeInfo | { error: string } } {
  try {
    return { runtime: getRuntimeInfo() };
  } catch (err) {
    return { runtime: { error: (err as Error).message } };
  }
}

function modelReport(
  dir: string,
  contextSize: number | undefined,
  maxBatchTokens: number,
  gpus: ReturnType<typeof queryGpus>['gpus'],
): ModelReport {
  const cfgPath = path.join(dir, 'config.json');
  if (!fs.existsSync(cfgPath)) throw new Error(`${dir}: no config.json (is it a model directory?)`);
  const config = parseHfJson(fs.readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
  const dims = dimsFromConfig(config);
  const weights = summarizeWeights(dir);
  const ctx = contextSize ?? Math.min(dims.maxPositionEmbeddings, 32768); // the engine's default (lib/model.ts)
  const plan = memoryPlan(dims, weights.bytes, ctx, maxBatchTokens, 'f32');
  const cudaPlan = memoryPlan(dims, weights.bytes, ctx, maxBatchTokens, 'bf16');
  return {
    dir,
    modelType: config.model_type,
    layerPattern: dims.pattern,
    layers: { total: dims.pattern.length, ...layerCounts(dims.pattern) },
    parameters: weights.parameters,
    weightBytes: weights.bytes,
    weights,
    memory: { ...plan, note: ESTIMATE_NOTE },
    cudaMemory: cudaPlan,
    fits: [
      capacity('on the CPU', 'cpu', os.totalmem(), os.freemem(), plan),
      ...gpus.map((g) => capacity(`on gpu ${g.index}`, 'cuda', g.memoryTotalBytes, g.memoryFreeBytes, cudaPlan)),
    ],
  };
}

function printText(runtime: ReturnType<typeof runtimeReport>['runtime'], gpu: ReturnType<typeof queryGpus>, model?: ModelReport): void {
  const out: string[] = ['runtime'];
  if ('error' in runtime) out.push(`  native binding: NOT LOADED (${runtime.error})`);
  else {
    const cpu = Object.entries(runtime.cpu).map(([k, v]) => `${k} ${v ? 'yes' : 'no'}`).join(', ');
    out.push(`  binding:   ${runtime.binding ?? '?'} (${runtime.source})`, `  cpu:       ${cpu}`);
    out.push(`  cuda:      compiled ${runtime.cuda.compiled ? 'yes' : 'no'}, available ${runtime.cuda.available ? 'yes' : 'no'}${runtime.cuda.reason ? ` (${runtime.cuda.reason})` : ''}`);
  }
  if (gpu.gpus.length === 0) out.push(`  gpus:      none${gpu.note ? ` (${gpu.note})` : ''}`);
  for (const g of gpu.gpus)
    out.push(`  gpu ${g.index}:     ${g.name}, driver ${g.driver}, compute capability ${g.computeCapability}, ${formatBytes(g.memoryFreeBytes)} free of ${formatBytes(g.memoryTotalBytes)}`);
  if (model) {
    const m = model.memory;
    const g = model.cudaMemory;
    const dtypes = Object.entries(model.weights.dtypes).map(([k, v]) => `${k} ${v.toLocaleString('en-US')}`).join(', ');
    out.push(
      '',
      `model ${model.dir}`,
      `  type:        ${String(model.modelType)}`,
      `  layers:      ${model.layers.total} "${model.layerPattern}" (M = Mamba2 ${model.layers.mamba}, * = attention ${model.layers.attention}, - = MLP ${model.layers.mlp})`,
      `  parameters:  ${model.parameters.toLocaleString('en-US')} (${dtypes})`,
      `  weights:     ${formatBytes(model.weightBytes)} in ${model.weights.files.length} file(s)`,
      '',
      `memory at context ${m.contextSize.toLocaleString('en-US')} (one sequence)`,
      `${''.padEnd(23)}${'on the CPU'.padStart(10)}  ${'on CUDA'.padStart(10)}`,
      `  weights              ${formatBytes(m.weightBytes).padStart(10)}  ${formatBytes(g.weightBytes).padStart(10)}`,
      `  mamba state          ${formatBytes(m.mambaStateBytes).padStart(10)}  ${formatBytes(g.mambaStateBytes).padStart(10)}   conv window + SSM state, fp32`,
      `  kv cache             ${formatBytes(m.kvCacheBytes).padStart(10)}  ${formatBytes(g.kvCacheBytes).padStart(10)}   at a full context, fp32 on the CPU, bf16 on CUDA (loadModel's kvCache)`,
      `  activations (est.)   ${formatBytes(m.activationBytes).padStart(10)}  ${formatBytes(g.activationBytes).padStart(10)}   ${m.maxBatchTokens} tokens per forward pass`,
      `  total (est.)         ${formatBytes(m.totalBytes).padStart(10)}  ${formatBytes(g.totalBytes).padStart(10)}`,
      `  each extra sequence  ${formatBytes(m.perSequenceBytes).padStart(10)}  ${formatBytes(g.perSequenceBytes).padStart(10)}`,
      ...model.fits.map(
        (f) => `  fits ${f.where.padEnd(15)} ${String(f.sequences).padStart(6)} sequences of this context (admission budget ${formatBytes(f.budgetBytes)})`,
      ),
      `  note: ${ESTIMATE_NOTE}`,
    );
  }
  console.log(out.join('\n'));
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseOrExit(spec, argv);
  if (typeof parsed === 'number') return parsed;
  const o = parsed.options;
  if (parsed.positionals.length > 0) {
    console.error(`nemotron info: unexpected argument "${parsed.positionals[0]}" (use --model DIR)`);
    return 2;
  }
  const { runtime } = runtimeReport();
  const gpu = queryGpus();
  let model: ModelReport | undefined;
  if (o.model) {
    try {
      model = modelReport(path.resolve(o.model), o['context-size'], o['max-batch-tokens'] ?? 512, gpu.gpus);
    } catch (err) {
      console.error(`nemotron info: ${(err as Error).message}`);
      return 1;
    }
  }
  if (o.json) console.log(JSON.stringify({ runtime, gpus: gpu.gpus, gpuNote: gpu.note, model }, null, 2));
  else printText(runtime, gpu, model);
  return 0;
}
