/**
 * `nemotron pull` against a local stand-in for the Hugging Face Hub: listing,
 * redirects, resume with Range, size/sha256 checks, skip of complete files, and
 * the errors a user can meet (404, 401, sha mismatch, unreachable endpoint).
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { startFakeHub, type FakeHub } from './helpers/cli-hub-server';
import { ensureCliBuilt, runCli } from './helpers/cli-run';

const REPO = 'acme/tiny-model';
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let source: string; // what the fake Hub serves
let work: string; // download targets
let hub: FakeHub;

beforeAll(() => {
  ensureCliBuilt();
  source = fs.mkdtempSync(path.join(os.tmpdir(), 'nemotron-hub-src-'));
  fs.writeFileSync(path.join(source, 'config.json'), JSON.stringify({ model_type: 'nemotron_h' }));
  fs.writeFileSync(path.join(source, 'model.safetensors'), randomBytes(300_000));
  fs.mkdirSync(path.join(source, 'extra'));
  fs.writeFileSync(path.join(source, 'extra', 'notes.txt'), 'nested file\n');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'nemotron-pull-'));
});

afterAll(() => {
  fs.rmSync(source, { recursive: true, force: true });
  fs.rmSync(work, { recursive: true, force: true });
});

afterEach(async () => {
  await hub?.close();
});

function target(name: string): string {
  return path.join(work, name);
}

function expectSameTree(dir: string): void {
  for (const f of ['config.json', 'model.safetensors', 'extra/notes.txt'])
    expect(sha256(fs.readFileSync(path.join(dir, f)))).toBe(sha256(fs.readFileSync(path.join(source, f))));
  expect(fs.readdirSync(dir).filter((f) => f.endsWith('.partial'))).toEqual([]);
}

test('downloads every file through the redirect, then skips them when complete', async () => {
  hub = await startFakeHub({ repo: REPO, dir: source });
  const dir = target('full');
  const r = await runCli(['pull', REPO, '--dir', dir], { env: { HF_ENDPOINT: hub.endpoint, HF_TOKEN: 'hf_test' } });
  expect(r.stderr).toContain('3 downloaded');
  expect(r.code).toBe(0);
  expectSameTree(dir);
  expect(hub.requests.some((q) => q.url === '/cdn/model.safetensors')).toBe(true); // the redirect was followed
  expect(hub.requests[0].authorization).toBe('Bearer hf_test');

  hub.requests.length = 0;
  const again = await runCli(['pull', REPO, '--dir', dir], { env: { HF_ENDPOINT: hub.endpoint } });
  expect(again.code).toBe(0);
  expect(again.stderr).toContain('3 already complete');
  expect(hub.requests.filter((q) => q.url.includes('/resolve/'))).toEqual([]);
});

test('resumes a .partial file with a Range request and checks its sha256', async () => {
  hub = await startFakeHub({ repo: REPO, dir: source });
  const dir = target('resume');
  fs.mkdirSync(dir);
  const whole = fs.readFileSync(path.join(source, 'model.safetensors'));
  const half = Math.floor(whole.length / 2);
  fs.writeFileSync(path.join(dir, 'model.safetensors.partial'), whole.subarray(0, half));

  const r = await runCli(['pull', REPO, '--dir', dir], { env: { HF_ENDPOINT: hub.endpoint } });
  expect(r.stderr).toContain('resuming');
  expect(r.code).toBe(0);
  const ranged = hub.requests.filter((q) => q.range);
  expect(ranged.map((q) => q.range)).toContain(`bytes=${half}-`);
  expect(sha256(fs.readFileSync(path.join(dir, 'model.safetensors')))).toBe(sha256(whole));
  expect(r.stderr).toMatch(/model\.safetensors: resumed .*sha256 ok/);
  expectSameTree(dir);
});

test('a sha256 mismatch fails, names the file and leaves no file behind', async () => {
  hub = await startFakeHub({ repo: REPO, dir: source, wrongSha: ['model.safetensors'] });
  const dir = target('badsha');
  const r = await runCli(['pull', REPO, '--dir', dir], { env: { HF_ENDPOINT: hub.endpoint } });
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/model\.safetensors: sha256 mismatch/);
  expect(fs.existsSync(path.join(dir, 'model.safetensors'))).toBe(false);
  expect(fs.existsSync(path.join(dir, 'model.safetensors.partial'))).toBe(false);
});

test('an unknown repository is a clear 404 error', async () => {
  hub = await startFakeHub({ repo: REPO, dir: source });
  const r = await runCli(['pull', 'acme/missing', '--dir', target('missing')], { env: { HF_ENDPOINT: hub.endpoint } });
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/listing acme\/missing@main: not found \(HTTP 404\)/);
});

test('401 tells the user about HF_TOKEN', async () => {
  hub = await startFakeHub({ repo: REPO, dir: source, requireToken: 'secret' });
  const r = await runCli(['pull', REPO, '--dir', target('auth')], { env: { HF_ENDPOINT: hub.endpoint, HF_TOKEN: '' } });
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/HTTP 401.*set HF_TOKEN/);
  const ok = await runCli(['pull', REPO, '--dir', target('auth')], { env: { HF_ENDPOINT: hub.endpoint, HF_TOKEN: 'secret' } });
  expect(ok.code).toBe(0);
});

test('an unreachable endpoint is a network error, not a stack trace', async () => {
  hub = await startFakeHub({ repo: REPO, dir: source });
  const endpoint = hub.endpoint;
  await hub.close(); // nothing listens there any more
  const r = await runCli(['pull', REPO, '--dir', target('offline'), '--retries', '0'], { env: { HF_ENDPOINT: endpoint } });
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
});

test('usage errors exit with 2', async () => {
  expect((await runCli(['pull'])).code).toBe(2);
  expect((await runCli(['pull', 'not a repo'])).code).toBe(2);
  expect((await runCli(['pull', REPO, '--retries', 'x'])).code).toBe(2);
});
