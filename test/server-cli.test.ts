/**
 * `nemotron serve` in-process: loads, prints the URL, serves, stops on SIGINT with exit code 0; with
 * --prompt-cache-dir the prompt snapshots are saved at stop and loaded by the next start.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { run } from '../lib/cli/commands/serve';
import { makeChatModelDir } from './helpers/chat-model';
import { sharedModelDir } from './helpers/test-tokenizer';

const testServe = sharedModelDir() ? test : test.skip;
if (!sharedModelDir()) console.log('skipping serve CLI test: ../shared/models/nemotron-nano-9b-v2 (chat template) not found');

testServe('serve: prints the URL, answers, and closes on SIGINT', async () => {
  const md = makeChatModelDir();
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nemotron-serve-cache-'));
  const logs: string[] = [];
  const log = jest.spyOn(console, 'log').mockImplementation((...a) => void logs.push(a.join(' ')));
  const err = jest.spyOn(console, 'error').mockImplementation((...a) => void logs.push(a.join(' ')));
  const urlOf = async () => {
    while (!logs.some((l) => l.includes('http://'))) await new Promise((r) => setTimeout(r, 10));
    return /(http:\/\/\S+)\/v1/.exec(logs.join('\n'))![1];
  };
  try {
    const args = ['--model', md.dir, '--port', '0', '--device', 'cpu', '--kv-cache', 'bf16', '--api-key', 'k', '--model-name', 'm'];
    const exit = run([...args, '--prompt-cache-dir', cacheDir]);
    const url = await urlOf();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const models = (await (await fetch(`${url}/v1/models`, { headers: { authorization: 'Bearer k' } })).json()) as { data: { id: string }[] };
    expect(models.data[0].id).toBe('m');
    expect(logs.join('\n')).toContain(`prompt cache: 0 snapshot(s) loaded from ${cacheDir}`);
    // a long system prompt: the cache keeps a snapshot at its end
    const chat = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'm',
        max_tokens: 2,
        messages: [
          { role: 'system', content: 'You answer questions about the weather, briefly and politely. '.repeat(4) },
          { role: 'user', content: 'Is it raining?' },
        ],
      }),
    });
    expect(chat.status).toBe(200);
    process.emit('SIGINT');
    expect(await exit).toBe(0);
    await expect(fetch(`${url}/health`)).rejects.toThrow();
    const files = fs.readdirSync(cacheDir).filter((f) => f.endsWith('.state'));
    expect(files.length).toBeGreaterThan(0);
    expect(logs.join('\n')).toContain(`prompt cache: ${files.length} snapshot(s) saved to ${cacheDir}`);

    // the next start loads them
    logs.length = 0;
    const again = run([...args, '--prompt-cache-dir', cacheDir]);
    await urlOf();
    expect(logs.join('\n')).toContain(`prompt cache: ${files.length} snapshot(s) loaded from ${cacheDir}`);
    process.emit('SIGINT');
    expect(await again).toBe(0);
    expect(await run(['--model', md.dir, '--prompt-cache', '0', '--prompt-cache-dir', cacheDir])).toBe(2);
    expect(await run(['--port', '1'])).toBe(2); // --model is required
    expect(await run(['--model', md.dir, '--kv-cache', 'f16'])).toBe(2);
    expect(logs.join('\n')).toMatch(/--kv-cache must be auto, f32 or bf16, got "f16"/);
  } finally {
    log.mockRestore();
    err.mockRestore();
    md.cleanup();
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
});
