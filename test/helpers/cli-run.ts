/**
 * Runs the built `nemotron` CLI (bin/nemotron.js → dist/cjs) as a child process.
 * Asynchronous on purpose: tests serve HTTP from the same process, which a
 * spawnSync would block.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const ROOT = path.join(__dirname, '..', '..');
export const BIN = path.join(ROOT, 'bin', 'nemotron.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function newestMtime(dir: string, ext: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p, ext));
    else if (entry.name.endsWith(ext)) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * Compiles lib/ to dist/cjs when the CLI sources are newer than the build. Type
 * errors elsewhere in the tree do not stop tsc from emitting, so only the
 * presence of the output is checked.
 */
export function ensureCliBuilt(): void {
  const main = path.join(ROOT, 'dist', 'cjs', 'cli', 'main.js');
  const built = fs.existsSync(main) ? newestMtime(path.join(ROOT, 'dist', 'cjs', 'cli'), '.js') : 0;
  if (built >= newestMtime(path.join(ROOT, 'lib', 'cli'), '.ts')) return;
  spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(ROOT, 'tsconfig.build.json')], {
    cwd: ROOT,
    stdio: 'ignore',
  });
  if (!fs.existsSync(main)) throw new Error('could not build dist/cjs: run `npm run build:ts`');
}
