#!/usr/bin/env node
// Runs the native C++ test binary built by `npm run build:native`
// (build/Release/nemotron_native_tests), from the repo root so that it finds
// ../shared/fixtures the same way the jest tests do.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const candidates = ['build/Release/nemotron_native_tests', 'build/nemotron_native_tests', 'build/Debug/nemotron_native_tests'];
const bin = candidates.map((c) => path.join(root, c)).find((c) => fs.existsSync(c));
if (!bin) {
  console.error('native tests: binary not found; run `npm run build:native` first');
  process.exit(1);
}
const r = spawnSync(bin, process.argv.slice(2), { cwd: root, stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
