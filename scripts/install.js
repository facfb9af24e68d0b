#!/usr/bin/env node
// The package's `install` step (package.json "scripts.install").
//
// In a consumer project:
//   1. a prebuilt binary matching this platform/arch/libc (prebuilds/, found by
//      node-gyp-build exactly as lib/native.ts will find it at run time) is used when it
//      actually loads here: no compiler, cmake or CUDA toolkit needed;
//   2. otherwise, or with `npm install --build-from-source` (npm sets
//      npm_config_build_from_source) or NEMOTRON_BUILD_FROM_SOURCE=1, the addon is built
//      from the shipped sources with cmake-js into build/Release, which node-gyp-build
//      prefers over prebuilds at run time.
//
// In the repository checkout (TypeScript sources in lib/ are present; they are not
// published) `npm ci` / `npm install` also run this script: it does nothing there,
// because `npm run build` / `npm test` build the addon anyway and CI should not compile twice.
// --build-from-source still forces the build in a checkout.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const tag = 'nemotron-node:';

function log(msg) {
  // stderr: npm shows it when the install fails (and always with --foreground-scripts).
  console.error(`${tag} ${msg}`);
}

function forcedSourceBuild() {
  // `--build-from-source` gives "true"; prebuild-install's convention also allows naming the package.
  const v = String(process.env.npm_config_build_from_source || '').toLowerCase();
  const env = String(process.env.NEMOTRON_BUILD_FROM_SOURCE || '').toLowerCase();
  return v === 'true' || v === '1' || v.split(',').includes('nemotron-node') || env === '1' || env === 'true';
}

function isDevCheckout() {
  return fs.existsSync(path.join(root, 'lib', 'index.ts'));
}

/** First line of `cmd --version`, or undefined when cmd is not on PATH / does not run. */
function version(cmd) {
  const r = spawnSync(cmd, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return undefined;
  return (r.stdout || r.stderr).split('\n').find((l) => l.trim()) || cmd;
}

/** A loadable prebuild (or an earlier local build) or the reason there is none. */
function findUsableBinary() {
  let file;
  try {
    file = require('node-gyp-build').resolve(root);
  } catch (err) {
    return { reason: `no prebuilt binary for ${process.platform}-${process.arch} in this package` };
  }
  // A name match is not enough (e.g. a glibc older than the build machine's): load it in
  // a separate process so a crash there cannot take the install down with it.
  const r = spawnSync(process.execPath, ['-e', 'require(process.argv[1]).runtimeInfo()', file], {
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    const why = (r.stderr || '').split('\n').find((l) => /Error/.test(l)) || `exit ${r.status}`;
    return { reason: `${path.relative(root, file)} does not load here (${why.trim()})` };
  }
  return { file };
}

/** The CMake project enables C and C++: both compilers are needed (CXX / CC override the search). */
function findCompiler(lang) {
  const envVar = lang === 'c++' ? process.env.CXX : process.env.CC;
  const candidates = envVar ? [envVar] : lang === 'c++' ? ['c++', 'g++', 'clang++'] : ['cc', 'gcc', 'clang'];
  for (const c of candidates) {
    const v = version(c);
    if (v) return { cmd: c, version: v };
  }
  return undefined;
}

function findCudaToolkit() {
  const candidates = ['nvcc'];
  for (const dir of [process.env.CUDA_PATH, process.env.CUDA_HOME, '/usr/local/cuda']) {
    if (dir) candidates.push(path.join(dir, 'bin', 'nvcc'));
  }
  for (const c of candidates) {
    const r = spawnSync(c, ['--version'], { encoding: 'utf8' });
    if (!r.error && r.status === 0) {
      const m = /release (\d+\.\d+)/.exec(r.stdout);
      return { nvcc: c, version: m ? m[1] : 'unknown version' };
    }
  }
  return undefined;
}

function sourceBuild(why) {
  log(`building the native addon from source: ${why}`);
  const cmake = version('cmake');
  const cxx = findCompiler('c++');
  const cc = findCompiler('c');
  const make = version('ninja') ? 'ninja' : version('make') ? 'make' : undefined;
  log(`  cmake: ${cmake || 'NOT FOUND'}`);
  log(`  C++ compiler: ${cxx ? `${cxx.cmd} (${cxx.version})` : 'NOT FOUND'}`);
  log(`  C compiler: ${cc ? `${cc.cmd} (${cc.version})` : 'NOT FOUND'}`);
  log(`  build tool: ${make || 'NOT FOUND (need ninja or make)'}`);
  const cuda = findCudaToolkit();
  // The CUDA backend does not exist yet: every source build is CPU-only for now. When it
  // lands, this is where NEMOTRON_CUDA=ON and the GPU arch list get passed to CMake.
  log(
    cuda
      ? `  CUDA toolkit: found (${cuda.nvcc}, ${cuda.version}); this version has no CUDA backend: CPU-only build`
      : '  CUDA toolkit: not found: CPU-only build',
  );
  const missing = [];
  if (!cmake) missing.push('cmake >= 3.18 (apt install cmake | brew install cmake | pip install cmake)');
  if (!cxx) missing.push('a C++17 compiler (apt install g++ | xcode-select --install), or set CXX');
  if (!cc) missing.push('a C compiler (apt install gcc), or set CC');
  if (!make) missing.push('ninja or make (apt install make)');
  if (missing.length) {
    log('cannot build from source; missing:');
    for (const m of missing) log(`  - ${m}`);
    return false;
  }

  let cmakeJs;
  try {
    cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  } catch {
    log('cannot build from source: the cmake-js package is not installed');
    return false;
  }
  const args = [cmakeJs, 'compile', '--out', 'build', '--CDNEMOTRON_BUILD_TESTS=OFF'];
  log(`  running: cmake-js ${args.slice(1).join(' ')} (Release)`);
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: ['ignore', 2, 2] });
  if (r.status !== 0) {
    log(`the source build failed (${r.error ? r.error.message : `cmake-js exit ${r.status}`}); see the output above`);
    return false;
  }
  const built = findUsableBinary();
  if (!built.file) {
    log(`the source build finished but the addon does not load: ${built.reason}`);
    return false;
  }
  log(`built ${path.relative(root, built.file)} (CPU-only)`);
  return true;
}

function main() {
  const forced = forcedSourceBuild();
  if (isDevCheckout() && !forced) {
    log('repository checkout: skipping the install-time build (`npm run build` builds the addon)');
    return 0;
  }
  if (!forced) {
    const found = findUsableBinary();
    if (found.file) {
      const kind = found.file.includes(`${path.sep}prebuilds${path.sep}`) ? 'prebuilt binary' : 'existing local build';
      log(`using the ${kind} ${path.relative(root, found.file)}`);
      return 0;
    }
    return sourceBuild(found.reason) ? 0 : 1;
  }
  return sourceBuild('--build-from-source was given') ? 0 : 1;
}

process.exitCode = main();
