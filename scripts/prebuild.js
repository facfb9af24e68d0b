#!/usr/bin/env node
// Builds the prebuilt binary shipped in the npm package:
//   prebuilds/<platform>-<arch>/nemotron-node.napi.<libc>.node
// The name follows prebuildify's convention, which node-gyp-build (lib/native.ts)
// understands: "napi" = one binary for every Node version with N-API 8, "glibc"/"musl"
// = the C library it was linked against (a glibc build must not be picked on Alpine).
//
// prebuildify itself only drives node-gyp (it has no cmake-js backend), and its
// `rebuild` would wipe the shared build/ directory, so this script runs cmake-js
// itself, in its own build directory, with only the addon target.
//
// Usage:
//   node scripts/prebuild.js                 configure + compile (Release) into build-prebuild/
//   node scripts/prebuild.js --from FILE     package an existing Release build of the addon
//                                            (e.g. build/Release/nemotron_node.node; same flags)
//   node scripts/prebuild.js -- --CDFOO=BAR  extra cmake-js arguments (e.g. the CUDA option, later)
//   node scripts/prebuild.js --check         (prepack) fail when this platform's prebuild is missing,
//                                            warn when native/ sources are newer than it
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const BUILD_DIR = 'build-prebuild';

function libc() {
  if (process.platform !== 'linux') return undefined;
  // Node's own report says which C library this process runs on.
  const header = process.report && process.report.getReport().header;
  return header && header.glibcVersionRuntime ? 'glibc' : 'musl';
}

function prebuildPath() {
  const tags = ['nemotron-node', 'napi', libc()].filter(Boolean);
  return path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, tags.join('.') + '.node');
}

function run(cmd, args) {
  console.log(`prebuild: ${[cmd, ...args].join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`${cmd} failed (${r.error ? r.error.message : 'exit ' + r.status})`);
}

/** The newest GLIBC_x.y symbol version the binary needs: the oldest glibc it loads on. */
function glibcNeeded(file) {
  const r = spawnSync('objdump', ['-T', file], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const versions = [...r.stdout.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  if (!versions.length) return undefined;
  versions.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return versions[versions.length - 1].join('.');
}

/** Newest modification time under dir (recursive), 0 when empty. */
function newestMtime(dir) {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** A tarball without prebuilds would make every user compile: refuse to pack one. */
function checkPrebuild() {
  const dest = prebuildPath();
  if (!fs.existsSync(dest)) {
    throw new Error(`${path.relative(root, dest)} is missing: run \`npm run build:prebuild\` before packing`);
  }
  if (newestMtime(path.join(root, 'native')) > fs.statSync(dest).mtimeMs) {
    console.warn(`prebuild: warning: native/ has changes newer than ${path.relative(root, dest)}; rebuild it`);
  }
  console.log(`prebuild: ${path.relative(root, dest)} present`);
}

function main(argv) {
  if (argv.includes('--check')) return checkPrebuild();
  const dashes = argv.indexOf('--');
  const extra = dashes >= 0 ? argv.slice(dashes + 1) : [];
  const own = dashes >= 0 ? argv.slice(0, dashes) : argv;
  const fromIdx = own.indexOf('--from');
  let built;
  if (fromIdx >= 0) {
    built = path.resolve(own[fromIdx + 1] || '');
    if (!fs.existsSync(built)) throw new Error(`--from: ${built} does not exist`);
  } else {
    const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
    // Release is cmake-js's default; NEMOTRON_BUILD_TESTS=OFF builds only the addon.
    run(process.execPath, [cmakeJs, 'compile', '--out', BUILD_DIR, '--CDNEMOTRON_BUILD_TESTS=OFF', ...extra]);
    built = path.join(root, BUILD_DIR, 'Release', 'nemotron_node.node');
  }

  const dest = prebuildPath();
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.copyFileSync(built, dest);
  // Strip symbols: they are most of the file size and users get no use from them.
  if (process.platform === 'linux') run('strip', ['--strip-all', dest]);
  else if (process.platform === 'darwin') run('strip', ['-Sx', dest]);

  // The binary must load in a plain Node process before it is worth shipping.
  const check = spawnSync(
    process.execPath,
    ['-e', 'const b = require(process.argv[1]); console.log(JSON.stringify(b.runtimeInfo()))', dest],
    { encoding: 'utf8' },
  );
  if (check.status !== 0) throw new Error(`the prebuild does not load:\n${check.stderr}`);
  const size = (fs.statSync(dest).size / 1024).toFixed(0);
  const glibc = glibcNeeded(dest);
  console.log(`prebuild: wrote ${path.relative(root, dest)} (${size} KiB${glibc ? `, needs glibc >= ${glibc}` : ''})`);
  console.log(`prebuild: runtime info ${check.stdout.trim()}`);
}

try {
  main(process.argv.slice(2));
} catch (err) {
  console.error(`prebuild: ${err.message}`);
  process.exit(1);
}
