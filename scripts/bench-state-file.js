#!/usr/bin/env node
'use strict';
/**
 * Saved-state benchmark: seq.saveState / model.loadSequence at the 9B model's exact state shape (27 Mamba
 * layers of 128 heads × 80 × 128 fp32, 4 attention layers of 8 KV heads × 128), against feeding the same
 * tokens again. The state does not depend on the hidden size, so the RANDOM-weight model here keeps the
 * 9B layer pattern and Mamba/attention dimensions with a small hidden size and vocabulary (~0.3 GB, not
 * 17.8 GB): the file is byte for byte as large as the 9B one. Loads read a file the OS has just written
 * (page cache): this measures our code and the memory copies, not the disk.
 * Options: --tokens N (1024)  --runs N (3)  --dir DIR (os.tmpdir())  --device cpu|cuda  --threads N  --json FILE
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { PRESETS, ensureRandomModel } = require('./random-model');

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const nTokens = Number(opt('--tokens', 1024));
const runs = Number(opt('--runs', 3));
const device = opt('--device', 'cpu');
const outDir = opt('--dir', os.tmpdir());

// The 9B shapes that make up the state; the hidden size and vocab only set the weights' size.
const NINE_B = PRESETS['nano-9b-v2'];
const STATE_SHAPE = {
  ...NINE_B,
  hidden_size: 256,
  vocab_size: 4096,
  intermediate_size: 256,
  max_position_embeddings: 131072,
};

const tokens = (n) => Array.from({ length: n }, (_, i) => 3 + ((i * 104729) % 4000));
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const best = (xs) => Math.min(...xs);

async function main() {
  const { loadModel, inspectStateFile } = require(path.join(__dirname, '..', 'dist', 'cjs'));
  const dir = path.join(__dirname, '..', '.demo-model', 'state-shape-9b');
  ensureRandomModel(dir, STATE_SHAPE);
  const threads = args.includes('--threads') ? Number(opt('--threads')) : undefined;
  const model = await loadModel(dir, { device, threads, contextSize: nTokens + 64 });
  const plan = model.memory;
  console.log(
    `# saved states — ${device}, ${os.cpus()[0].model}, ${model.info.threads} threads; the 9B state shape: ` +
      `${(plan.stateBytesPerSequence / 2 ** 20).toFixed(1)} MiB fixed + ${plan.kvBytesPerToken / 1024} KiB/token`,
  );

  const seq = model.createSequence({ contextSize: nTokens + 64 });
  let t0 = process.hrtime.bigint();
  await seq.prefill(tokens(nTokens));
  const prefillMs = ms(t0);
  const file = path.join(outDir, `nemotron-bench-${process.pid}.state`);
  const save = [];
  const load = [];
  let bytes = 0;
  try {
    for (let r = 0; r < runs; r++) {
      t0 = process.hrtime.bigint();
      bytes = (await seq.saveState(file)).bytes;
      save.push(ms(t0));
    }
    const info = await inspectStateFile(file);
    if (info.tokens !== nTokens) throw new Error(`the file holds ${info.tokens} tokens, expected ${nTokens}`);
    const check = await seq.clone();
    const want = await check.decode(7);
    check.dispose();
    for (let r = 0; r < runs; r++) {
      t0 = process.hrtime.bigint();
      const loaded = await model.loadSequence(file);
      load.push(ms(t0));
      const got = await loaded.decode(7);
      if (got.some((v, i) => v !== want[i])) throw new Error('a loaded state decoded differently from the saved one');
      loaded.dispose();
    }
  } finally {
    fs.rmSync(file, { force: true });
    model.dispose();
  }

  const gbps = (t) => bytes / (t / 1e3) / 1e9;
  const rows = [
    ['state file', `${(bytes / 2 ** 20).toFixed(1)} MiB`, `${nTokens} tokens`],
    ['saveState', `${best(save).toFixed(0)} ms`, `${gbps(best(save)).toFixed(2)} GB/s (copy + checksum + write + fsync + rename; best of ${runs})`],
    ['loadSequence', `${best(load).toFixed(0)} ms`, `${gbps(best(load)).toFixed(2)} GB/s (read + checksum + copy in; best of ${runs})`],
    ['prefill of the same tokens', `${prefillMs.toFixed(0)} ms`, 'this small-hidden model; a 9B prefill costs far more (see bench:e2e)'],
  ];
  for (const [what, value, note] of rows) console.log(`${what.padEnd(28)} ${value.padStart(10)}   ${note}`);
  console.log('loaded states decode bit-identically to the saved sequence: yes');
  const json = opt('--json');
  if (json) {
    const result = { device, tokens: nTokens, bytes, saveMs: save, loadMs: load, prefillMs, threads: model.info.threads };
    fs.writeFileSync(json, JSON.stringify(result, null, 2) + '\n');
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
