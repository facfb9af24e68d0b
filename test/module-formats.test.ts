/**
 * `require('nemotron-node')` and `import ... from 'nemotron-node'` both work from
 * the built package (the package's own "exports" map, resolved by self-reference),
 * and share one native binding.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.join(__dirname, '..');

function node(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8' });
  return { status: r.status, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

describe('module formats', () => {
  beforeAll(() => {
    if (!fs.existsSync(path.join(root, 'dist/cjs/index.js')) || !fs.existsSync(path.join(root, 'dist/esm/index.mjs')))
      throw new Error('dist/ is missing: run `npm run build` (npm test does this first)');
  });

  test('require() gives the CommonJS build', () => {
    const r = node(['-e', "const m = require('nemotron-node'); console.log(typeof m.loadModel, typeof m.ContextOverflowError, m.getRuntimeInfo().cuda.compiled !== undefined)"]);
    expect(r.out.trim()).toBe('function function true');
    expect(r.status).toBe(0);
  });

  test('import gives named exports (no top-level await) and the same classes as require', () => {
    const r = node([
      '--input-type=module',
      '-e',
      "import { loadModel, DisposedError } from 'nemotron-node'; import { createRequire } from 'node:module'; " +
        "const cjs = createRequire(import.meta.url)('nemotron-node'); console.log(typeof loadModel, DisposedError === cjs.DisposedError)",
    ]);
    expect(r.out.trim()).toBe('function true');
    expect(r.status).toBe(0);
  });
});
