/**
 * `nemotron bench [--cpu] [--threads N] [--json FILE]`: runs the CPU benchmark
 * (scripts/bench-cpu.js: kernel roofline numbers, then end to end on a mid-size
 * random-weight model) as a child process, so its output streams through as it
 * is produced. GPU benchmarks do not exist yet.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { packageRoot } from '../../native';
import { parseOrExit } from '../args';

const spec = {
  name: 'bench',
  summary: 'Kernel and end-to-end CPU benchmarks (a mid-size random-weight model is generated once into .demo-model/).',
  options: {
    cpu: { kind: 'boolean', help: 'the CPU benchmark (the default, and for now the only one)' },
    gpu: { kind: 'boolean', help: 'GPU benchmarks (not available yet)' },
    threads: { kind: 'number', integer: true, min: 1, help: 'engine threads (default: all cores)' },
    json: { kind: 'string', value: 'FILE', help: 'also write every number to FILE as JSON' },
    'decode-tokens': { kind: 'number', integer: true, min: 1, help: 'tokens to decode (default 64)' },
    'prefill-tokens': { kind: 'number', integer: true, min: 1, help: 'prompt tokens to prefill (default 512)' },
  },
} as const;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseOrExit(spec, argv);
  if (typeof parsed === 'number') return parsed;
  const o = parsed.options;
  if (o.gpu) {
    console.error('nemotron bench: GPU benchmarks do not exist yet (the CUDA backend is not built); run `nemotron bench --cpu`');
    return 1;
  }
  const root = packageRoot();
  const script = path.join(root, 'scripts', 'bench-cpu.js');
  if (!fs.existsSync(script)) {
    console.error(
      `nemotron bench: ${script} is not in this installation (the npm package does not ship scripts/); ` +
        'clone the repository and run `npm run bench:cpu` there',
    );
    return 1;
  }
  console.error('note: GPU benchmarks do not exist yet; running the CPU benchmark');
  const args = [script];
  if (o.threads !== undefined) args.push('--threads', String(o.threads));
  if (o.json !== undefined) args.push('--json', path.resolve(o.json));
  if (o['decode-tokens'] !== undefined) args.push('--decode-tokens', String(o['decode-tokens']));
  if (o['prefill-tokens'] !== undefined) args.push('--prefill-tokens', String(o['prefill-tokens']));
  return new Promise<number>((resolve) => {
    const child = spawn(process.execPath, args, { cwd: root, stdio: 'inherit' });
    // Ctrl-C reaches the child through the terminal's process group; wait for it to exit.
    const ignore = () => undefined;
    process.on('SIGINT', ignore);
    child.on('error', (err) => {
      console.error(`nemotron bench: cannot start the benchmark: ${err.message}`);
      resolve(1);
    });
    child.on('exit', (code, signal) => {
      process.off('SIGINT', ignore);
      resolve(code ?? (signal ? 130 : 1));
    });
  });
}
