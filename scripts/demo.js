#!/usr/bin/env node
'use strict';
/**
 * The main job, runnable on a fresh machine with no downloaded weights:
 *   npm run demo                      # a small NemotronH with RANDOM weights (generated once)
 *   npm run demo -- --model DIR       # a real checkpoint directory instead
 * Loads the model with progress, prefills a prompt of token ids, then streams
 * greedily generated token ids with per-token timings. With random weights the
 * ids are meaningless: the demo shows the API, the engine and its speed.
 * Options: --model DIR, --prompt "1,2,3" (token ids), --tokens N, --threads N, --device cpu|auto|cuda.
 */
const path = require('node:path');

const { PRESETS, ensureRandomModel } = require('./random-model');

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);

async function main() {
  const { loadModel, getRuntimeInfo } = require(path.join(__dirname, '..', 'dist', 'cjs'));
  let dir = opt('--model', undefined);
  if (!dir) {
    dir = path.join(__dirname, '..', '.demo-model', 'demo');
    console.log('No --model given: using a demo NemotronH with RANDOM weights (hidden 1024, layers "M-M*-MM-",');
    console.log('vocab 32768). Its output ids are meaningless; pass --model DIR for a real checkpoint.');
    const g = ensureRandomModel(dir, PRESETS.demo);
    console.log(g.reused ? `reusing ${dir}` : `generated ${dir}`);
  }
  const info = getRuntimeInfo();
  console.log(`runtime: cpu avx2=${info.cpu.avx2} fma=${info.cpu.fma}; cuda: ${info.cuda.available ? 'available' : info.cuda.reason}`);

  let lastPct = -1;
  const t0 = Date.now();
  const model = await loadModel(dir, {
    device: opt('--device', 'auto'),
    threads: args.includes('--threads') ? Number(opt('--threads')) : undefined,
    onProgress: (p) => {
      if (p.stage !== 'weights' || !p.totalBytes) return;
      const pct = Math.floor((100 * p.loadedBytes) / p.totalBytes);
      if (pct >= lastPct + 10 || pct === 100) {
        lastPct = pct;
        process.stdout.write(`\rloading weights ${pct}% (${(p.loadedBytes / 1e6).toFixed(0)} MB)`);
      }
    },
  });
  console.log(`\nloaded in ${Date.now() - t0} ms on ${model.device} (${model.info.threads} threads), ` +
    `${model.info.numLayers} layers "${model.info.layerPattern}", vocab ${model.vocabSize}`);

  const prompt = opt('--prompt', undefined)?.split(',').map(Number) ??
    Array.from({ length: 64 }, (_, i) => 1 + ((i * 7919) % (model.vocabSize - 1)));
  const nNew = Number(opt('--tokens', 32));
  const seq = model.createSequence({ contextSize: prompt.length + nNew + 1 });
  const argmax = (a) => { let b = 0; for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i; return b; };

  let t = process.hrtime.bigint();
  let logits = await seq.prefill(prompt);
  const prefillMs = Number(process.hrtime.bigint() - t) / 1e6;
  console.log(`prefill: ${prompt.length} tokens in ${prefillMs.toFixed(1)} ms (${(prompt.length / prefillMs * 1000).toFixed(0)} tokens/s)`);
  process.stdout.write('generated ids:');
  let decodeMs = 0;
  for (let i = 0; i < nNew; i++) {
    const id = argmax(logits);
    t = process.hrtime.bigint();
    logits = await seq.decode(id);
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    decodeMs += ms;
    process.stdout.write(` ${id} (${ms.toFixed(1)}ms)`);
  }
  console.log(`\ndecode: ${nNew} tokens in ${decodeMs.toFixed(0)} ms (${(nNew / decodeMs * 1000).toFixed(1)} tokens/s)`);
  model.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
