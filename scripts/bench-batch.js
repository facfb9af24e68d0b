#!/usr/bin/env node
'use strict';
/**
 * Continuous-batching benchmark: N concurrent sequences decoding greedily on the
 * mid-size RANDOM-weight model (CPU; the GPU version needs the CUDA backend
 * verified first). Prints aggregate decode tokens/s, p50/p95 inter-token latency
 * per stream and the scaling against one stream.
 * Options: --streams 1,8,32,64,128  --tokens N  --threads N  --device cpu|cuda  --json FILE
 *          --sample js|native|both  sample with --temperature (0.6) / --top-p (0.95) the way a
 *            chat turn does (lib/chat/turn.ts): the JS Sampler on each step's logits, or the
 *            native sampler inside the batched step (Sequence.decodeSample); without it, greedy argmax.
 * Also prints the event-loop utilisation (main-thread busy share) during the decode.
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
const sampleModes = { js: ['js'], native: ['native'], both: ['js', 'native'] }[opt('--sample', '')] ?? ['greedy'];
const sampling = { temperature: Number(opt('--temperature', 0.6)), topP: Number(opt('--top-p', 0.95)) };

function pct(a, p) {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** One stream's decode loop; calls onToken after every step. */
async function decodeStream(mode, seq, firstLogits, seed, onToken) {
  const { Sampler } = require(path.join(__dirname, '..', 'dist', 'cjs', 'chat', 'sampling.js'));
  const sampler = new Sampler({ ...sampling, seed });
  const history = [];
  let logits = firstLogits;
  let id = mode === 'greedy' ? argmax(logits) : sampler.sample(logits, history);
  for (let k = 0; k < tokens; k++) {
    history.push(id);
    if (mode === 'native') {
      id = (await seq.decodeSample(id, sampler, history)).id;
    } else {
      logits = await seq.decode(id);
      id = mode === 'greedy' ? argmax(logits) : sampler.sample(logits, history);
    }
    onToken();
  }
  return history;
}

function argmax(logits) {
  let best = 0;
  for (let v = 1; v < logits.length; v++) if (logits[v] > logits[best]) best = v;
  return best;
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
  console.log(`# continuous batching — ${device}, ${os.cpus()[0].model}, ${model.info.threads} threads, random-weight mid-size model (vocab ${model.vocabSize})`);
  if (sampleModes[0] !== 'greedy') console.log(`# sampling ${JSON.stringify(sampling)}, history passed as a chat turn does`);
  console.log('sampling  streams  aggregate tok/s  per-stream tok/s  p50 ms/token  p95 ms/token  scaling  avg batch  event loop busy');
  const results = [];
  const firstTokens = new Map(); // streams -> each stream's tokens in the first mode, to check the others give the same
  for (const mode of sampleModes) {
    let base;
    for (const n of streamsList) {
      const seqs = Array.from({ length: n }, () => model.createSequence({ contextSize: 64 + tokens }));
      const prompts = seqs.map((_, i) => Array.from({ length: 16 }, (_, t) => 1 + ((i * 131 + t * 7919) % 32000)));
      const firsts = await Promise.all(seqs.map((s, i) => s.prefill(prompts[i])));
      const gaps = [];
      const before = { ...model.batcher.stats };
      const elu0 = performance.eventLoopUtilization();
      const t0 = process.hrtime.bigint();
      const generated = await Promise.all(
        seqs.map((s, i) => {
          let last = process.hrtime.bigint();
          return decodeStream(mode, s, firsts[i], i + 1, () => {
            const now = process.hrtime.bigint();
            gaps.push(Number(now - last) / 1e6);
            last = now;
          });
        }),
      );
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      const elu = performance.eventLoopUtilization(elu0).utilization;
      const agg = (n * tokens) / secs;
      base = base ?? agg;
      const batches = model.batcher.stats.batches - before.batches;
      if (!firstTokens.has(n)) firstTokens.set(n, JSON.stringify(generated));
      const sameTokens = firstTokens.get(n) === JSON.stringify(generated);
      const r = { sampling: mode, same_tokens_as_first_mode: sameTokens, streams: n, aggregate_tps: agg, per_stream_tps: agg / n, p50_ms: pct(gaps, 50), p95_ms: pct(gaps, 95), scaling: agg / base, avg_batch: (n * tokens) / batches, event_loop_busy: elu };
      results.push(r);
      console.log(
        `${mode.padEnd(8)}  ${String(n).padStart(7)}  ${agg.toFixed(1).padStart(15)}  ${(agg / n).toFixed(1).padStart(16)}  ${r.p50_ms.toFixed(1).padStart(12)}  ${r.p95_ms.toFixed(1).padStart(12)}  ${r.scaling.toFixed(2).padStart(6)}x  ${r.avg_batch.toFixed(1).padStart(9)}  ${(100 * elu).toFixed(0).padStart(14)}%${sameTokens ? '' : '  (tokens differ from the first mode!)'}`,
      );
      r.reserved_mib = model.memory.reservedBytes / 2 ** 20; // admission: state + KV reserved by the n streams
      seqs.forEach((s) => s.dispose());
    }
  }
  model.dispose();
  if (opt('--json')) fs.writeFileSync(opt('--json'), JSON.stringify({ device, tokens, sampling, results }, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
