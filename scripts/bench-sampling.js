#!/usr/bin/env node
'use strict';
/**
 * Sampler cost per token at the real vocabulary size (131072), on a flat and a
 * peaked logit distribution: the host-side work every decode step pays per stream.
 * Usage: node scripts/bench-sampling.js   (after npm run build:ts)
 */
const path = require('node:path');
const { Sampler } = require(path.join(__dirname, '..', 'dist', 'cjs', 'chat', 'sampling.js'));

const V = 131072;
const shapes = {
  // nearly uniform: every token is a candidate (the worst case for top-p)
  flat: (i) => Math.sin(i * 12.9898) * 0.5,
  // a language-model-like spread: a few strong tokens, a long tail
  peaked: (i) => (i % 997 === 0 ? 12 : 0) + Math.sin(i * 78.233) * 3,
};
const settings = [
  { temperature: 0 },
  { temperature: 1 },
  { temperature: 0.6, topP: 0.95 },
  { temperature: 0.8, topK: 40 },
  { temperature: 1, minP: 0.05 },
];
console.log(`# sampler, vocab ${V}: ms per token (mean of 200 after 20 warm-up)`);
for (const [name, f] of Object.entries(shapes)) {
  const logits = Float32Array.from({ length: V }, (_, i) => f(i));
  for (const opts of settings) {
    const s = new Sampler({ ...opts, seed: 1 });
    for (let i = 0; i < 20; i++) s.sample(logits);
    const t0 = performance.now();
    for (let i = 0; i < 200; i++) s.sample(logits);
    console.log(`${name.padEnd(7)} ${JSON.stringify(opts).padEnd(36)} ${((performance.now() - t0) / 200).toFixed(3)} ms`);
  }
}
