/**
 * `nemotron serve --model DIR [--port 8000] [--host 127.0.0.1] [--api-key KEY] ...`:
 * loads the model (with a progress line), serves the OpenAI-compatible API and
 * shuts down gracefully on SIGINT/SIGTERM (running generations are aborted,
 * streams end, then the process exits).
 */
import * as path from 'node:path';

import { loadModel } from '../../model';
import { createServer } from '../../server';
import { parseOrExit } from '../args';
import { ProgressBar } from '../progress';

/** Prompt-cache snapshots `nemotron serve` keeps unless --prompt-cache says otherwise. */
const DEFAULT_PROMPT_CACHE = 16;

const spec = {
  name: 'serve',
  summary: 'OpenAI-compatible HTTP server: /v1/chat/completions, /v1/completions, /v1/models, /health, /metrics.',
  options: {
    model: { kind: 'string', value: 'DIR', help: 'model directory (config.json, safetensors, tokenizer.json)' },
    port: { kind: 'number', integer: true, min: 0, help: 'port to listen on (default 8000; 0 = any free port)' },
    host: { kind: 'string', value: 'HOST', help: 'interface to bind (default 127.0.0.1; 0.0.0.0 exposes the server)' },
    'api-key': { kind: 'string', value: 'KEY', help: 'require "Authorization: Bearer KEY" (default: $NEMOTRON_API_KEY, else none)' },
    'model-name': { kind: 'string', value: 'NAME', help: 'the model id clients send (default: the directory name)' },
    device: { kind: 'string', value: 'auto|cpu|cuda', help: 'where to run (default auto)' },
    threads: { kind: 'number', integer: true, min: 1, help: 'CPU threads (default: all cores)' },
    'kv-cache': { kind: 'string', value: 'auto|f32|bf16', help: 'KV cache type (default auto: bf16 on CUDA, f32 on the CPU)' },
    'context-size': { kind: 'number', integer: true, min: 16, help: 'context size per request' },
    'max-queue': { kind: 'number', integer: true, min: 0, help: 'most waiting requests before 429 (default 64)' },
    'max-concurrent': { kind: 'number', integer: true, min: 1, help: 'generations run at once, batched together (default: 8 on the CPU, 128 on a GPU)' },
    'prompt-cache': { kind: 'number', integer: true, min: 0, help: 'snapshots of common prompt prefixes kept for reuse (default 16; 0 = off)' },
    'prompt-cache-dir': { kind: 'string', value: 'DIR', help: 'load the prompt snapshots saved here at start, save them here at stop' },
    'max-tokens': { kind: 'number', integer: true, min: 1, help: 'default max_tokens when a request gives none' },
  },
} as const;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseOrExit(spec, argv);
  if (typeof parsed === 'number') return parsed;
  const o = parsed.options;
  if (!o.model) {
    console.error('nemotron serve: --model DIR is required (nemotron pull REPO downloads one)');
    return 2;
  }
  const device = o.device ?? 'auto';
  if (device !== 'auto' && device !== 'cpu' && device !== 'cuda') {
    console.error(`nemotron serve: --device must be auto, cpu or cuda, got "${device}"`);
    return 2;
  }
  const cacheDir = o['prompt-cache-dir'];
  if (cacheDir !== undefined && (o['prompt-cache'] ?? DEFAULT_PROMPT_CACHE) === 0) {
    console.error('nemotron serve: --prompt-cache-dir needs the prompt cache on (--prompt-cache N with N > 0)');
    return 2;
  }
  const kvCache = o['kv-cache'] ?? 'auto';
  if (kvCache !== 'auto' && kvCache !== 'f32' && kvCache !== 'bf16') {
    console.error(`nemotron serve: --kv-cache must be auto, f32 or bf16, got "${kvCache}"`);
    return 2;
  }

  let bar: ProgressBar | undefined;
  const t0 = Date.now();
  const model = await loadModel(o.model, {
    device,
    threads: o.threads,
    kvCache,
    contextSize: o['context-size'],
    ...((o['prompt-cache'] ?? DEFAULT_PROMPT_CACHE) > 0 ? { promptCache: { maxEntries: o['prompt-cache'] ?? DEFAULT_PROMPT_CACHE } } : {}),
    onProgress: (p) => {
      if (p.stage !== 'weights' || p.totalBytes <= 0) return;
      bar ??= new ProgressBar({ label: 'loading weights', total: p.totalBytes, lineIntervalMs: 2000 });
      bar.update(p.loadedBytes);
    },
  });
  bar?.finish(`loaded ${o.model} on ${model.device} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  if (cacheDir !== undefined && model.promptCache) {
    const r = await model.promptCache.load(cacheDir);
    console.log(`prompt cache: ${r.loaded} snapshot(s) loaded from ${cacheDir}`);
    for (const sk of r.skipped) console.error(`prompt cache: skipped ${sk.file}: ${sk.reason}`);
  }

  const server = await createServer(model, {
    host: o.host ?? '127.0.0.1',
    port: o.port ?? 8000,
    apiKey: o['api-key'] ?? process.env.NEMOTRON_API_KEY ?? undefined,
    modelName: o['model-name'],
    maxQueue: o['max-queue'],
    maxConcurrent: o['max-concurrent'],
    defaultMaxTokens: o['max-tokens'],
  });
  const name = o['model-name'] ?? path.basename(model.dir);
  console.log(`serving "${name}" at ${server.url}/v1  (OpenAI base URL; Ctrl-C stops)`);

  let closed = () => {};
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        // a second Ctrl-C: do not wait any longer
        console.error(`\n${signal} again: exiting now`);
        process.exit(130);
      }
      stopping = true;
      console.error(`\n${signal}: stopping (aborting running requests)...`);
      server.close().then(resolve, (err) => {
        console.error('nemotron serve: error while closing:', err);
        resolve();
      });
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    closed = () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    };
  });
  closed();
  if (cacheDir !== undefined && model.promptCache) {
    try {
      const saved = await model.promptCache.save(cacheDir);
      console.error(`prompt cache: ${saved.files} snapshot(s) saved to ${cacheDir}`);
    } catch (err) {
      console.error(`nemotron serve: could not save the prompt cache to ${cacheDir}: ${(err as Error).message}`);
    }
  }
  model.dispose();
  return 0;
}
