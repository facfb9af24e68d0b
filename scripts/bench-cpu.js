#!/usr/bin/env node
'use strict';
/**
 * CPU benchmark, one run:
 *  1. the native kernel bench (build/Release/nemotron_bench_cpu): this machine's
 *     memcpy bandwidth and FMA peak, then GEMV (decode) and GEMM (prefill) kernels;
 *  2. end to end through the public API on a mid-size NemotronH with RANDOM weights
 *     (hidden 1024, 8 layers "M-M*-MM-", vocab 32768; generated once into
 *     .demo-model/bench-mid): decode tokens/s with the achieved weight-streaming GB/s
 *     against the memcpy bandwidth measured in step 1, and prefill tokens/s with the
 *     achieved GFLOP/s against the measured FMA peak.
 * Options: --threads N, --json FILE (writes all numbers), --decode-tokens N, --prefill-tokens N.
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { PRESETS, ensureRandomModel, tensorList } = require('./random-model');

const root = path.join(__dirname, '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const threads = Number(opt('--threads', os.availableParallelism ? os.availableParallelism() : os.cpus().length));
const decodeTokens = Number(opt('--decode-tokens', 64));
const prefillTokens = Number(opt('--prefill-tokens', 512));
const jsonOut = opt('--json', undefined);

function kernelBench() {
  const bin = ['build/Release/nemotron_bench_cpu', 'build/nemotron_bench_cpu'].map((p) => path.join(root, p)).find(fs.existsSync);
  if (!bin) throw new Error('nemotron_bench_cpu not built: run `npm run build:native`');
  const tmp = path.join(os.tmpdir(), `nemotron-kernel-bench-${process.pid}.json`);
  const r = spawnSync(bin, ['--threads', String(threads), '--json', tmp], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error('kernel bench failed');
  const j = JSON.parse(fs.readFileSync(tmp, 'utf8'));
  fs.rmSync(tmp, { force: true });
  return j;
}

/** Bytes of weights read per decoded token (every matrix once; embeddings: one row, ignored). */
function weightStreamBytes(config) {
  let bytes = 0;
  for (const [name, shape] of tensorList(config)) {
    if (name === 'backbone.embeddings.weight') continue;
    bytes += shape.reduce((a, b) => a * b, 1) * 2;
  }
  return bytes;
}

/** FLOPs of the matrix products per token (2 per multiply-add); attention and scan are left out (small here). */
function matmulFlopsPerToken(config) {
  let params = 0;
  for (const [name, shape] of tensorList(config))
    if (shape.length === 2 && name !== 'backbone.embeddings.weight') params += shape[0] * shape[1];
  return 2 * params;
}

async function main() {
  const { loadModel } = require(path.join(root, 'dist/cjs'));
  console.log(`# nemotron-node CPU benchmark — ${os.cpus()[0].model}, ${os.cpus().length} cores, threads ${threads}\n`);
  const k = kernelBench();
  const memcpy = k.memcpy_gbps;
  // The stricter (larger) of the measured FMA-loop rate and the theoretical peak
  // from the measured clock: a noisy loop measurement must not flatter the results.
  const peak = Math.max(k.fma_peak_gflops, k.fma_peak_theoretical_gflops ?? 0);

  const dir = path.join(root, '.demo-model', 'bench-mid');
  const gen = ensureRandomModel(dir, PRESETS['bench-mid']);
  const config = gen.config;
  const model = await loadModel(dir, { device: 'cpu', threads });

  // Prefill: a fresh sequence, one prompt (chunked internally by maxBatchTokens).
  const prompt = Array.from({ length: prefillTokens }, (_, i) => (i * 7919 + 13) % config.vocab_size);
  const seq = model.createSequence({ contextSize: prefillTokens + decodeTokens + 8 });
  const warm = model.createSequence({ contextSize: 64 }); // warm-up: first-touch costs out of the timing
  await warm.prefill(prompt.slice(0, 32));
  warm.dispose();
  let t0 = process.hrtime.bigint();
  let logits = await seq.prefill(prompt);
  const prefillS = Number(process.hrtime.bigint() - t0) / 1e9;

  // Decode: greedy steps.
  let next = 0;
  const argmax = (a) => { let b = 0; for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i; return b; };
  next = argmax(logits);
  t0 = process.hrtime.bigint();
  for (let i = 0; i < decodeTokens; i++) {
    logits = await seq.decode(next);
    next = argmax(logits);
  }
  const decodeS = Number(process.hrtime.bigint() - t0) / 1e9;
  model.dispose();

  const decodeTps = decodeTokens / decodeS;
  const streamGBps = (weightStreamBytes(config) * decodeTps) / 1e9;
  const prefillTps = prefillTokens / prefillS;
  const prefillGflops = (matmulFlopsPerToken(config) * prefillTps) / 1e9;
  const e2e = {
    model: 'random weights, hidden 1024, 8 layers M-M*-MM-, vocab 32768, bf16',
    weight_bytes_per_token: weightStreamBytes(config),
    decode_tokens_per_s: decodeTps,
    decode_weight_gbps: streamGBps,
    decode_pct_of_memcpy: (100 * streamGBps) / memcpy,
    prefill_tokens: prefillTokens,
    prefill_tokens_per_s: prefillTps,
    prefill_matmul_gflops: prefillGflops,
    prefill_pct_of_fma_peak: (100 * prefillGflops) / peak,
  };
  console.log('\n## End to end (public API, mid-size model, random weights)');
  console.log(`decode : ${decodeTps.toFixed(1)} tokens/s, weights streamed ${streamGBps.toFixed(1)} GB/s = ${e2e.decode_pct_of_memcpy.toFixed(0)}% of memcpy ${memcpy.toFixed(1)} GB/s`);
  console.log(`prefill: ${prefillTps.toFixed(0)} tokens/s (${prefillTokens}-token prompt), matmul ${prefillGflops.toFixed(1)} GFLOP/s = ${e2e.prefill_pct_of_fma_peak.toFixed(0)}% of FMA peak ${peak.toFixed(1)} GFLOP/s`);
  if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify({ threads, kernels: k, e2e }, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
