#!/usr/bin/env node
'use strict';
/**
 * `npm run bench:kernels [-- ARGS]`: the CUDA kernel microbenchmarks at the 9B shapes
 * (native/bench/kernels, binary nemotron_bench_kernels), one run:
 *  1. finds the binary in build/ (it exists only when the build found a CUDA compiler);
 *  2. asks it whether a usable CUDA device is present (--check-device); if not, says why and stops;
 *  3. if python3 can import torch with CUDA, runs scripts/torch-baselines.py on the same shapes
 *     first and passes its JSON as --baseline, which adds the "vs torch" column;
 *  4. runs the bench, forwarding ARGS (--quick, --filter SUBSTR, --json FILE, --baseline FILE).
 * Extra options: --no-torch (skip step 3), --torch-out FILE (where step 3 writes; default
 * build/torch-baselines.json). Exits 0 without running anything on machines without CUDA.
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const args = process.argv.slice(2);

function takeFlag(name) {
  const i = args.indexOf(name);
  if (i < 0) return false;
  args.splice(i, 1);
  return true;
}
function takeOption(name) {
  const i = args.indexOf(name);
  if (i < 0 || i + 1 >= args.length) return undefined;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
}
const peekOption = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);

const noTorch = takeFlag('--no-torch');
const torchOut = path.resolve(takeOption('--torch-out') || path.join(root, 'build', 'torch-baselines.json'));

function findBinary() {
  const names = ['build/nemotron_bench_kernels', 'build/Release/nemotron_bench_kernels'];
  return names.map((n) => path.join(root, n)).find((p) => fs.existsSync(p));
}

/** Why the kernel bench was not built, from the CMake cache. */
function whyNotBuilt() {
  const cache = path.join(root, 'build', 'CMakeCache.txt');
  if (!fs.existsSync(cache)) return 'nothing is built yet: run `npm run build:native`';
  const text = fs.readFileSync(cache, 'utf8');
  const nvcc = /^CMAKE_CUDA_COMPILER:[A-Z]+=(.*)$/m.exec(text);
  const off = /^NEMOTRON_CUDA:[A-Z]+=OFF$/m.test(text) || process.env.NEMOTRON_CUDA === 'OFF';
  if (off) return 'this build has no CUDA backend (NEMOTRON_CUDA=OFF)';
  if (!nvcc || !nvcc[1] || /NOTFOUND/.test(nvcc[1]))
    return 'this build has no CUDA backend: CMake found no CUDA compiler (install the CUDA toolkit so nvcc is on PATH, then `NEMOTRON_CUDA=ON npm run build:native`)';
  return 'the build has a CUDA compiler but no nemotron_bench_kernels: was it configured with NEMOTRON_BUILD_TESTS=OFF? Rebuild with `npm run build:native`';
}

function torchUsable() {
  const r = spawnSync('python3', ['-c', 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)'], {
    stdio: 'ignore',
  });
  return r.status === 0;
}

function main() {
  const bin = findBinary();
  if (!bin) {
    console.log(`bench:kernels: nemotron_bench_kernels not found: ${whyNotBuilt()}.`);
    return 0;
  }
  const check = spawnSync(bin, ['--check-device'], { encoding: 'utf8' });
  if (check.status !== 0) {
    // The binary itself says why ("no CUDA device: ..."); that is not a failure.
    process.stdout.write(check.stdout || `no CUDA device (nemotron_bench_kernels exited ${check.status})\n`);
    return 0;
  }

  const benchArgs = [...args];
  if (!noTorch && !peekOption('--baseline')) {
    if (torchUsable()) {
      const torchArgs = [path.join(__dirname, 'torch-baselines.py'), '--out', torchOut];
      if (args.includes('--quick')) torchArgs.push('--quick');
      const filter = peekOption('--filter');
      if (filter) torchArgs.push('--filter', filter);
      console.log(`== PyTorch baselines (scripts/torch-baselines.py -> ${path.relative(process.cwd(), torchOut)})`);
      const r = spawnSync('python3', torchArgs, { stdio: 'inherit' });
      if (r.status === 0 && fs.existsSync(torchOut)) benchArgs.push('--baseline', torchOut);
      else console.log('(the torch baselines failed: running the bench without the "vs torch" column)');
      console.log('');
    } else {
      console.log('(python3 cannot import torch with CUDA: no "vs torch" column; --no-torch silences this)\n');
    }
  }
  const r = spawnSync(bin, benchArgs, { stdio: 'inherit' });
  return r.status === null ? 1 : r.status;
}

process.exitCode = main();
