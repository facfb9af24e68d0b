#!/usr/bin/env node
'use strict';
/**
 * Continuous-batching benchmark: N concurrent sequences decoding greedily on the
 * mid-size RANDOM-weight model (CPU; the GPU version needs the CUDA backend
 * verified first). Prints aggregate decode tokens/s, p50/p95 inter-token latency
 * per stream and the scaling against one stream.
 * Options: --streams 1,8,32,64,128  --tokens N  --threads N  --device cpu|cuda  --json FILE
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { PRESETS, ensureRandomModel } = require('./random-model');

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const streamsList = opt('--streams', '1,8,32,64,128').split(',').map(Number);
const tokens = Number(opt('--tokens', 32));
const device = opt('--device', 'cpu');

function pct(a, p) {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

async function main() {
  const { loadModel } = require(path.join(__dirname, '..', 'dist', 'cjs'));
  const dir = path.join(__dirname, '..', '.demo-model', 'bench-mid');
  ensureRandomModel(dir, PRESETS['bench-mid']);
  const maxStreams = Math.max(...streamsList);
  const model = await loadModel(dir, {
    device,
    threads: args.includes('--threads') ? Number(opt('--threads')) : undefined,
    maxBatchSize: maxStreams,
  });
  console.log(`# continuous batching — ${device}, ${os.cpus()[0].model}, ${model.info.threads} threads, random-weight mid-size model`);
  console.log('streams  aggregate tok/s  per-stream tok/s  p50 ms/token  p95 ms/token  scaling  avg batch');
  const results = [];
  let base;
  for (const n of streamsList) {
    const seqs = Array.from({ length: n }, () => model.createSequence({ contextSize: 64 + tokens }));
    const prompts = seqs.map((_, i) => Array.from({ length: 16 }, (_, t) => 1 + ((i * 131 + t * 7919) % 32000)));
    const firsts = await Promise.all(seqs.map((s, i) => s.prefill(prompts[i])));
    const gaps = [];
    const before = { ...model.batcher.stats };
    const t0 = process.hrtime.bigint();
    await Promise.all(
      seqs.map(async (s, i) => {
        let logits = firsts[i];
        let last = process.hrtime.bigint();
        for (let k = 0; k < tokens; k++) {
          let best = 0;
          for (let v = 1; v < logits.length; v++) if (logits[v] > logits[best]) best = v;
          logits = await s.decode(best);
          const now = process.hrtime.bigint();
          gaps.push(Number(now - last) / 1e6);
          last = now;
        }
      }),
    );
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const agg = (n * tokens) / secs;
    base = base ?? agg;
    const batches = model.batcher.stats.batches - before.batches;
    const r = { streams: n, aggregate_tps: agg, per_stream_tps: agg / n, p50_ms: pct(gaps, 50), p95_ms: pct(gaps, 95), scaling: agg / base, avg_batch: (n * tokens) / batches };
    results.push(r);
    console.log(
      `${String(n).padStart(7)}  ${agg.toFixed(1).padStart(15)}  ${(agg / n).toFixed(1).padStart(16)}  ${r.p50_ms.toFixed(1).padStart(12)}  ${r.p95_ms.toFixed(1).padStart(12)}  ${r.scaling.toFixed(2).padStart(6)}x  ${r.avg_batch.toFixed(1).padStart(9)}`,
    );
    r.reserved_mib = model.memory.reservedBytes / 2 ** 20; // admission: state + KV reserved by the n streams
    seqs.forEach((s) => s.dispose());
  }
  model.dispose();
  if (opt('--json')) fs.writeFileSync(opt('--json'), JSON.stringify({ device, tokens, results }, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
