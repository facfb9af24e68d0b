#!/usr/bin/env node
'use strict';
/**
 * `npm run bench:e2e`: runs the native end-to-end benchmark (build/nemotron_bench_e2e,
 * built from native/bench/e2e by `npm run build:native`) with every argument
 * forwarded. The binary writes its own random checkpoint of a real NemotronH shape
 * (nano-9b-v2 on a usable GPU, bench-mid on the CPU), then measures load, prefill,
 * batch-1 decode and batched decode; `--help` lists the options. It is a plain
 * native program so it also runs, unchanged, on a GPU machine without Node.
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
// Ninja and Make put executables at the top of the build tree; multi-config generators under the config name.
const CANDIDATES = ['build/nemotron_bench_e2e', 'build/Release/nemotron_bench_e2e', 'build/Debug/nemotron_bench_e2e'];

/** Path of the built benchmark binary (NEMOTRON_BENCH_E2E_BIN overrides), or undefined when it has not been built. */
function findBenchBinary() {
  const override = process.env.NEMOTRON_BENCH_E2E_BIN;
  if (override) return fs.existsSync(override) ? override : undefined;
  return CANDIDATES.map((p) => path.join(root, p)).find((p) => fs.existsSync(p));
}

module.exports = { findBenchBinary };

if (require.main === module) {
  const bin = findBenchBinary();
  if (!bin) {
    console.error('nemotron_bench_e2e is not built: run `npm run build:native` (looked for ' + CANDIDATES.join(', ') + ')');
    process.exit(1);
  }
  const r = spawnSync(bin, process.argv.slice(2), { stdio: 'inherit' });
  if (r.error) {
    console.error(`cannot run ${bin}: ${r.error.message}`);
    process.exit(1);
  }
  process.exit(r.status ?? 1);
}
