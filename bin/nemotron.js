#!/usr/bin/env node
'use strict';
// The `nemotron` CLI entry (package.json "bin"). The commands are compiled TypeScript in dist/cjs/cli.
require('../dist/cjs/cli/main.js')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  })
  .catch((err) => {
    console.error(err && err.message ? `nemotron: ${err.message}` : err);
    process.exitCode = 1;
  });
