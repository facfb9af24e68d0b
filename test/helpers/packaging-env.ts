/**
 * Helpers for test/packaging.test.ts: a consumer-like environment outside the repo.
 *  - hiddenToolsBin(): a directory holding only `node`, `npm` and `sh` (symlinks), used as the
 *    whole PATH so no cmake / cc / c++ / g++ / make is reachable — as on a user's machine
 *    without build tools;
 *  - cleanEnv(): the process environment without the npm_* variables that the outer
 *    `npm test` sets (npm_config_local_prefix etc. would point the consumer's npm at the repo);
 *  - run(): spawnSync with captured output and a timeout.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const BUILD_TOOLS = ['cmake', 'cc', 'gcc', 'c++', 'g++', 'clang', 'clang++', 'make', 'ninja', 'nvcc'];

/** Absolute path of an executable found on PATH, or undefined. */
export function findOnPath(name: string, envPath = process.env.PATH ?? ''): string | undefined {
  for (const dir of envPath.split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Creates <dir>/bin with node, npm and sh only; returns that directory. */
export function hiddenToolsBin(dir: string): string {
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  const npm = process.env.npm_execpath && /npm-cli\.js$/.test(process.env.npm_execpath)
    ? process.env.npm_execpath
    : findOnPath('npm');
  if (!npm) throw new Error('npm not found on PATH');
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  // npm runs package scripts through `sh` found on PATH; a shell is no build tool.
  fs.symlinkSync(fs.realpathSync('/bin/sh'), path.join(bin, 'sh'));
  // npm-cli.js starts with `#!/usr/bin/env node`, which finds the node link above.
  fs.symlinkSync(fs.realpathSync(npm), path.join(bin, 'npm'));
  return bin;
}

/** npm settings worth keeping (where the cache / registry / proxy are); everything else npm_* is dropped. */
const KEEP_NPM = /^npm_config_(cache|registry|userconfig|globalconfig|https?_proxy|proxy|noproxy|strict_ssl|cafile)$/i;

export function cleanEnv(overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) && !KEEP_NPM.test(k)) continue;
    if (k === 'INIT_CWD' || k === 'NODE_OPTIONS' || k === 'NODE_PATH') continue;
    env[k] = v;
  }
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export interface RunResult {
  status: number | null;
  stdout: string;
  /** stdout + stderr */
  out: string;
}

export function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): RunResult {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? cleanEnv(),
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  const out = (r.stdout ?? '') + (r.stderr ?? '') + (r.error ? `\n${r.error.message}` : '');
  return { status: r.status, stdout: r.stdout ?? '', out };
}

/** Throws with the command's output when it failed: test failures then show why. */
export function runOk(cmd: string, args: string[], opts: Parameters<typeof run>[2]): RunResult {
  const r = run(cmd, args, opts);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.out.slice(-4000)}`);
  return r;
}
