#!/usr/bin/env node
'use strict';
/**
 * Prompt-cache benchmark: time to first token (the prompt's prefill) of an
 * OpenAI-API-style conversation, whose every request resends the whole history,
 * with and without loadModel's promptCache, on the mid-size RANDOM-weight model.
 *   1. one conversation: a system block, then turns of a user message + a reply;
 *      request k's prompt is the system block + every earlier turn + its message;
 *   2. new conversations that share the system block (each one's first request).
 * The cached run keeps snapshots where a chat session does: the end of the system
 * block and the end of each request's conversation before its generation prompt
 * (the next request resends it, with the reply after it).
 * Options: --system N (512)  --turns N (6)  --user N (64)  --reply N (48)  --threads N
 *          --device cpu|cuda  --json FILE
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { PRESETS, ensureRandomModel } = require('./random-model');

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const systemLen = Number(opt('--system', 512));
const turns = Number(opt('--turns', 6));
const userLen = Number(opt('--user', 64));
const replyLen = Number(opt('--reply', 48));
const device = opt('--device', 'cpu');

/** Deterministic token ids (never 0..2: pad, bos, eos). */
const tokens = (seed, n) => Array.from({ length: n }, (_, i) => 3 + ((seed * 7919 + i * 104729) % 32000));

async function main() {
  const { loadModel } = require(path.join(__dirname, '..', 'dist', 'cjs'));
  const dir = path.join(__dirname, '..', '.demo-model', 'bench-mid');
  ensureRandomModel(dir, PRESETS['bench-mid']);
  const threads = args.includes('--threads') ? Number(opt('--threads')) : undefined;
  const contextSize = systemLen + turns * (userLen + replyLen) + 64;
  const system = tokens(1, systemLen);

  const results = {};
  for (const mode of ['uncached', 'cached']) {
    const model = await loadModel(dir, {
      device,
      threads,
      contextSize,
      ...(mode === 'cached' ? { promptCache: { maxEntries: 16 } } : {}),
    });
    if (mode === 'uncached')
      console.log(`# prompt cache — ${device}, ${os.cpus()[0].model}, ${model.info.threads} threads, random-weight mid-size model`);
    const prefill = async (prompt, snapshotAt) => {
      const t0 = process.hrtime.bigint();
      let seq;
      let reused = 0;
      if (model.promptCache) {
        const r = await model.promptCache.prefill(prompt, { contextSize, snapshotAt });
        seq = r.seq;
        reused = r.reusedTokens;
      } else {
        seq = model.createSequence({ contextSize });
        await seq.prefill(prompt);
      }
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      seq.dispose();
      return { ms, reused, prompt: prompt.length };
    };

    // 1. one conversation, turn after turn
    const conversation = [];
    const generationPrompt = tokens(999, 5); // (a chat template's "assistant" header: not in the history)
    let history = [...system];
    for (let k = 0; k < turns; k++) {
      const asked = [...history, ...tokens(100 + k, userLen)];
      const prompt = [...asked, ...generationPrompt];
      conversation.push(await prefill(prompt, [systemLen, asked.length]));
      history = [...asked, ...tokens(200 + k, replyLen)]; // the reply joins the history of the next request
    }
    // 2. new conversations sharing the system block
    const fresh = [];
    for (let c = 0; c < 4; c++) fresh.push(await prefill([...system, ...tokens(300 + c, userLen)], [systemLen]));
    results[mode] = { conversation, fresh, stats: model.promptCache?.stats };
    model.dispose();
  }

  console.log('\none conversation (request k resends the history): prefill ms, tokens reused');
  console.log('turn  prompt   uncached ms   cached ms   reused   speed-up');
  results.cached.conversation.forEach((c, k) => {
    const u = results.uncached.conversation[k];
    console.log(
      `${String(k + 1).padStart(4)}  ${String(c.prompt).padStart(6)}  ${u.ms.toFixed(1).padStart(12)}  ${c.ms.toFixed(1).padStart(10)}  ${String(c.reused).padStart(7)}  ${(u.ms / c.ms).toFixed(2).padStart(8)}x`,
    );
  });
  console.log('\nnew conversations with the same system block (first request each)');
  console.log('conv  prompt   uncached ms   cached ms   reused   speed-up');
  results.cached.fresh.forEach((c, k) => {
    const u = results.uncached.fresh[k];
    console.log(
      `${String(k + 1).padStart(4)}  ${String(c.prompt).padStart(6)}  ${u.ms.toFixed(1).padStart(12)}  ${c.ms.toFixed(1).padStart(10)}  ${String(c.reused).padStart(7)}  ${(u.ms / c.ms).toFixed(2).padStart(8)}x`,
    );
  });
  const sum = (xs) => xs.reduce((s, x) => s + x.ms, 0);
  const all = (m) => [...results[m].conversation, ...results[m].fresh];
  console.log(
    `\ntotal prefill: uncached ${sum(all('uncached')).toFixed(0)} ms, cached ${sum(all('cached')).toFixed(0)} ms ` +
      `(${(sum(all('uncached')) / sum(all('cached'))).toFixed(2)}x); snapshots ${JSON.stringify(results.cached.stats)}`,
  );
  if (opt('--json')) fs.writeFileSync(opt('--json'), JSON.stringify({ device, systemLen, turns, userLen, replyLen, results }, null, 2));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
