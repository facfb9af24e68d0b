/** `nemotron serve` in-process: loads, prints the URL, serves, stops on SIGINT with exit code 0. */
import { run } from '../lib/cli/commands/serve';
import { makeChatModelDir } from './helpers/chat-model';
import { sharedModelDir } from './helpers/test-tokenizer';

const testServe = sharedModelDir() ? test : test.skip;
if (!sharedModelDir()) console.log('skipping serve CLI test: ../shared/models/nemotron-nano-9b-v2 (chat template) not found');

testServe('serve: prints the URL, answers, and closes on SIGINT', async () => {
  const md = makeChatModelDir();
  const logs: string[] = [];
  const log = jest.spyOn(console, 'log').mockImplementation((...a) => void logs.push(a.join(' ')));
  const err = jest.spyOn(console, 'error').mockImplementation(() => undefined);
  try {
    const exit = run(['--model', md.dir, '--port', '0', '--device', 'cpu', '--kv-cache', 'bf16', '--api-key', 'k', '--model-name', 'm']);
    while (!logs.some((l) => l.includes('http://'))) await new Promise((r) => setTimeout(r, 10));
    const url = /(http:\/\/\S+)\/v1/.exec(logs.join('\n'))![1];
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const models = (await (await fetch(`${url}/v1/models`, { headers: { authorization: 'Bearer k' } })).json()) as { data: { id: string }[] };
    expect(models.data[0].id).toBe('m');
    process.emit('SIGINT');
    expect(await exit).toBe(0);
    await expect(fetch(`${url}/health`)).rejects.toThrow();
    expect(await run(['--port', '1'])).toBe(2); // --model is required
    expect(await run(['--model', md.dir, '--kv-cache', 'f16'])).toBe(2);
    expect(err.mock.calls.flat().join('\n')).toMatch(/--kv-cache must be auto, f32 or bf16, got "f16"/);
  } finally {
    log.mockRestore();
    err.mockRestore();
    md.cleanup();
  }
});
