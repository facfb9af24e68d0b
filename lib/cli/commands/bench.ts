/**
 * `nemotron bench [--cpu | --gpu] [--threads N] [--json FILE]`: runs a benchmark
 * from the repository checkout as a child process, so its output streams through
 * as it is produced: the CPU benchmark (scripts/bench-cpu.js: kernel roofline
 * numbers, then end to end on a mid-size random-weight model), or with --gpu the
 * native end-to-end benchmark on CUDA (scripts/bench-e2e.js: random weights of
 * the real 9B shape). The npm package ships neither (they need the repository).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { packageRoot } from '../../native';
import { parseOrExit } from '../args';

const spec = {
  name: 'bench',
  summary: 'CPU benchmarks (a mid-size random-weight model is generated once into .demo-model/), or --gpu the end-to-end 9B-shape benchmark on CUDA.',
  options: {
    cpu: { kind: 'boolean', help: 'the CPU benchmark (the default)' },
    gpu: { kind: 'boolean', help: 'the end-to-end benchmark on CUDA at the 9B shape (writes a 17.8 GB random checkpoint to /tmp once); kernel microbenchmarks: npm run bench:kernels' },
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
  if (o.gpu && o.cpu) {
    console.error('nemotron bench: choose --cpu or --gpu');
    return 2;
  }
  const root = packageRoot();
  const script = path.join(root, 'scripts', o.gpu ? 'bench-e2e.js' : 'bench-cpu.js');
  if (!fs.existsSync(script)) {
    console.error(
      `nemotron bench: ${script} is not in this installation (the npm package does not ship scripts/); ` +
        `clone the repository and run \`npm run ${o.gpu ? 'bench:e2e' : 'bench:cpu'}\` there`,
    );
    return 1;
  }
  if (o.gpu && (o['decode-tokens'] !== undefined || o['prefill-tokens'] !== undefined)) {
    console.error('nemotron bench: --decode-tokens/--prefill-tokens are CPU-benchmark options (see node scripts/bench-e2e.js --help)');
    return 2;
  }
  const args = o.gpu ? [script, '--device', 'cuda'] : [script];
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
