/**
 * The shared reference fixtures (../shared/fixtures): tiny NemotronH checkpoints
 * with golden logits from an independent float64 reference. Absent in a user's
 * clone: tests then skip and print why.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface FixtureCase {
  prompt_ids: number[];
}

export interface Fixture {
  name: string;
  dir: string;
  manifest: any; // fixture.json as written by the reference generator
  vocab: number;
  golden(file: string): Float32Array;
}

const ROOT = path.join(__dirname, '..', '..');

export function fixturesDir(): string | undefined {
  const candidates = [process.env.NEMOTRON_FIXTURES, path.join(ROOT, '..', 'shared', 'fixtures')];
  return candidates.find((c) => c && fs.existsSync(path.join(c, 'tiny-nemotron-h', 'config.json')));
}

export const FIXTURE_NAMES = ['tiny-nemotron-h', 'tiny-nemotron-h-sharded'];

export function loadFixture(name: string): Fixture | undefined {
  const base = fixturesDir();
  if (!base) return undefined;
  const dir = path.join(base, name);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'fixture.json'), 'utf8'));
  return {
    name,
    dir,
    manifest,
    vocab: manifest.model.dims.vocab,
    golden(file: string): Float32Array {
      const buf = fs.readFileSync(path.join(dir, file));
      return new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
    },
  };
}

/** describe() when the fixtures exist, otherwise a skipped describe with the reason printed once. */
export function describeWithFixtures(title: string, fn: () => void): void {
  if (fixturesDir()) {
    describe(title, fn);
  } else {
    // eslint-disable-next-line no-console
    console.log(`skipping "${title}": ../shared/fixtures not found (set NEMOTRON_FIXTURES to its path)`);
    describe.skip(title, fn);
  }
}

export function row(a: Float32Array, r: number, width: number): Float32Array {
  return a.subarray(r * width, (r + 1) * width);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

export function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}
