/**
 * Files written into the throw-away consumer project of test/packaging.test.ts: what a user
 * of the published package would write. Kept as strings so they are not compiled or run as
 * part of this repo's own test suite.
 */

/** Prints getRuntimeInfo() as JSON, loaded through require(). */
export const REQUIRE_PROBE = `
const m = require('nemotron-node');
console.log(JSON.stringify({ kind: typeof m.loadModel, info: m.getRuntimeInfo() }));
`;

/** The same through import() from an ES module. */
export const IMPORT_PROBE = `
const m = await import('nemotron-node');
const { createRequire } = await import('node:module');
const cjs = createRequire(import.meta.url)('nemotron-node');
console.log(JSON.stringify({ kind: typeof m.loadModel, sameClasses: m.DisposedError === cjs.DisposedError, info: m.getRuntimeInfo() }));
`;

/** Greedy decoding of the fixture's prompt on CPU; prints the ids and the expected ones. */
export const GREEDY = `
const fs = require('node:fs');
const path = require('node:path');
const { loadModel } = require('nemotron-node');
const dir = process.argv[2];
const c = JSON.parse(fs.readFileSync(path.join(dir, 'fixture.json'), 'utf8')).cases.prompt;
const argmax = (a) => { let b = 0; for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i; return b; };
(async () => {
  const model = await loadModel(dir, { device: 'cpu', threads: 2 });
  const seq = model.createSequence({ contextSize: 64 });
  let logits = await seq.prefill(c.prompt_ids);
  const ids = [];
  for (let j = 0; j < c.greedy.n_new_tokens; j++) {
    ids.push(argmax(logits));
    if (j + 1 < c.greedy.n_new_tokens) logits = await seq.decode(ids[j]);
  }
  console.log(JSON.stringify({ device: model.device, ids, expected: c.greedy.expected_ids }));
  model.dispose();
})().catch((e) => { console.error(e); process.exit(1); });
`;

/**
 * Type-level use of the public API. Compiled with tsc --noEmit as .cts (the "require" types)
 * and .mts (the "import" types). The @ts-expect-error lines make sure the types are real:
 * if the package resolved to \`any\` they would be unused directives, which is an error.
 */
export const CONSUMER_TS = `
import {
  loadModel,
  Model,
  Sequence,
  ChatSession,
  NemotronError,
  ContextOverflowError,
  DisposedError,
  getRuntimeInfo,
  type LoadModelOptions,
  type ChatSessionOptions,
  type ChatReply,
  type ChatEvent,
  type RuntimeInfo,
} from 'nemotron-node';

export async function demo(dir: string): Promise<string> {
  const options: LoadModelOptions = { device: 'cpu', threads: 2 };
  const model: Model = await loadModel(dir, options);
  const info: RuntimeInfo = getRuntimeInfo();
  const source: 'prebuild' | 'local-build' = info.source;
  const cudaReason: string = info.cuda.reason;
  const seq: Sequence = model.createSequence({ contextSize: 128 });
  const logits: Float32Array = await seq.prefill([1, 2, 3]);
  const chatOptions: ChatSessionOptions = { systemPrompt: 'be brief' };
  const chat: ChatSession = model.createChatSession(chatOptions);
  try {
    const reply: ChatReply = await chat.send('hi', { maxTokens: 8 });
    for await (const event of chat.stream('more')) {
      const e: ChatEvent = event;
      void e;
    }
    return reply.text + source + cudaReason + logits.length;
  } catch (err) {
    if (err instanceof ContextOverflowError || err instanceof DisposedError) return 'overflow/disposed';
    if (err instanceof NemotronError) return err.message;
    throw err;
  } finally {
    model.dispose();
  }
}

// @ts-expect-error: device is 'auto' | 'cpu' | 'cuda'
export const badDevice: LoadModelOptions = { device: 'tpu' };
// @ts-expect-error: loadModel returns a Promise, not a Model
export const notAwaited: Model = loadModel('x');
`;
