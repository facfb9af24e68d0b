#!/usr/bin/env node
// Builds and runs nemotron_cuda_emu_tests: the real CUDA kernels (native/backend/cuda)
// on the CPU emulator in native/tests/cuda_emu, against their CPU twins. Needs a C++
// compiler, cmake and python3; no nvcc, no GPU. Builds in build-emu/ (CPU only,
// separate from cmake-js's build/) and runs the tests once per thread schedule,
// in parallel, since a race may show in one schedule only.
//
//   node scripts/run-cuda-emu-tests.js [--schedules rr,low,high,random] [--seed N] [--full] [FILTER]
//
// --full (or NEMOTRON_EMU_FULL=1) adds the 9B-shaped cases (minutes). FILTER runs
// the tests whose name contains it. NEMOTRON_EMU_BUILD_DIR overrides build-emu/.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const args = process.argv.slice(2);
let schedules = ['rr', 'low', 'high', 'random'];
let seed = '1';
let full = !!process.env.NEMOTRON_EMU_FULL && process.env.NEMOTRON_EMU_FULL !== '0';
const rest = [];
for (let i = 0; i < args.length; ++i) {
  if (args[i] === '--schedules') schedules = args[++i].split(',').filter(Boolean);
  else if (args[i] === '--seed') seed = args[++i];
  else if (args[i] === '--full') full = true;
  else rest.push(args[i]);
}

const buildDir = path.resolve(root, process.env.NEMOTRON_EMU_BUILD_DIR || 'build-emu');
const jobs = String(Math.max(1, os.cpus().length));
const t0 = Date.now();

function run(cmd, argv, env) {
  const r = spawnSync(cmd, argv, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) {
    console.error(`cuda-emu: \`${cmd} ${argv.join(' ')}\` failed`);
    process.exit(r.status === null ? 1 : r.status);
  }
}

if (!fs.existsSync(path.join(buildDir, 'CMakeCache.txt'))) {
  // CPU-only configure: the target needs no CUDA toolkit (NEMOTRON_CUDA in the
  // environment would override the cache entry, so it is set there).
  run('cmake', ['-S', '.', '-B', buildDir, '-DCMAKE_BUILD_TYPE=Release', '-DNEMOTRON_CUDA=OFF'], { NEMOTRON_CUDA: 'OFF' });
}
run('cmake', ['--build', buildDir, '--target', 'nemotron_cuda_emu_tests', 'nemotron_bench_e2e_emu', '-j', jobs]);
const built = Date.now();
const bin = path.join(buildDir, 'nemotron_cuda_emu_tests');

// nemotron_bench_e2e's CUDA path on the emulated GPU at the tiny preset: every
// phase must run and report finite logits (its speeds mean nothing here). A smoke
// run, so a lent GPU's time is not lost to a benchmark that cannot run.
function benchSmoke() {
  const started = Date.now();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nemotron-emu-bench-'));
  const json = path.join(work, 'bench.json');
  const args = ['--device', 'cuda', '--preset', 'tiny', '--dir', path.join(work, 'model'), '--prefill', '40,70',
    '--decode-context', '40', '--streams', '1,3', '--decode-steps', '4', '--warmup-steps', '2', '--stream-prompt', '5',
    '--json', json];
  try {
    const r = spawnSync(path.join(buildDir, 'nemotron_bench_e2e_emu'), args, { cwd: root, encoding: 'utf8', timeout: 600_000 });
    const problems = [];
    if (r.status !== 0) problems.push(`exited ${r.status === null ? r.signal : r.status}`);
    let report = null;
    try {
      report = JSON.parse(fs.readFileSync(json, 'utf8'));
    } catch (e) {
      problems.push(`no JSON report (${e.message})`);
    }
    if (report) {
      const phases = [...(report.prefill || []), ...(report.decode || []), ...(report.streams || [])];
      if (report.device !== 'cuda') problems.push(`device ${report.device}`);
      if (phases.length !== 5) problems.push(`${phases.length} phase results, expected 5`);
      for (const p of phases) {
        if (p.status) problems.push(`a phase ${p.status}: ${JSON.stringify(p)}`);
        if (p.logits_finite === false) problems.push(`non-finite logits: ${JSON.stringify(p)}`);
      }
    }
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    if (problems.length) {
      console.log(`---- cuda-emu, nemotron_bench_e2e --device cuda (tiny): FAILED in ${secs} s: ${problems.join('; ')}`);
      process.stdout.write(`${r.stdout || ''}${r.stderr || ''}`);
      return false;
    }
    console.log(`---- cuda-emu, nemotron_bench_e2e --device cuda (tiny): every phase ran in ${secs} s`);
    return true;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

// One run per schedule, at most one per core; each run's output is printed
// whole when it ends (in schedule order), condensed when it passed.
function runSchedule(sched) {
  return new Promise((resolve) => {
    const env = { ...process.env, NEMOTRON_EMU_SCHED: sched, NEMOTRON_EMU_SEED: seed };
    if (full) env.NEMOTRON_EMU_FULL = '1';
    const started = Date.now();
    const child = spawn(bin, rest, { cwd: root, env });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code, signal) => resolve({ sched, code, signal, out, secs: (Date.now() - started) / 1000 }));
  });
}

(async () => {
  const results = new Array(schedules.length);
  let next = 0;
  const width = Math.min(schedules.length, Math.max(1, os.cpus().length));
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < schedules.length) {
        const i = next++;
        results[i] = await runSchedule(schedules[i]);
      }
    }),
  );
  let failed = 0;
  for (const r of results) {
    const ok = r.code === 0;
    if (!ok) ++failed;
    const label = `schedule ${r.sched}${r.sched === 'random' ? ` (seed ${seed})` : ''}`;
    console.log(`---- cuda-emu, ${label}: ${ok ? 'passed' : 'FAILED'} in ${r.secs.toFixed(1)} s`);
    const lines = r.out.split('\n');
    const shown = ok ? lines.filter((l) => !/^\[ +(RUN|OK) +\]/.test(l) && !/^cuda-emu: cuda/.test(l)) : lines;
    process.stdout.write(shown.join('\n').replace(/\n*$/, '\n'));
    if (r.signal) console.log(`(ended by ${r.signal})`);
  }
  // (with a name filter, only the tests asked for)
  const benchOk = rest.length > 0 || benchSmoke();
  const secs = (Date.now() - t0) / 1000, build = (built - t0) / 1000;
  console.log(
    `cuda-emu: ${schedules.length - failed} of ${schedules.length} schedules passed ` +
      `(${schedules.join(', ')}; build ${build.toFixed(0)} s, total ${secs.toFixed(0)} s)`,
  );
  process.exit(failed || !benchOk ? 1 : 0);
})();
