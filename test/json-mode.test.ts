/**
 * JSON mode. The incremental validator (lib/chat/json-constraint.ts) against
 * JSON.parse itself on many random strings and on every prefix of real
 * documents; then chat turns and the server's response_format "json_object",
 * where the model is pushed towards invalid tokens at every step and must still
 * produce exactly the JSON it prefers among the valid ones.
 */
import OpenAI from 'openai';

import { JsonPrefix } from '../lib/chat/json-constraint';
import { pushTowardsInvalid as pushTowards } from './helpers/constrained';
import { startServerFixture, type ServerFixture } from './helpers/server-fixture';
import { sharedModelDir } from './helpers/test-tokenizer';

const utf8 = (s: string) => new TextEncoder().encode(s);

/** Whether the validator accepts `s` as one complete JSON value (a space ends a trailing number). */
function validatorAccepts(s: string, topLevel: 'object' | 'any'): boolean {
  const p = new JsonPrefix(topLevel);
  return p.feed(utf8(s + ' ')) && p.complete;
}

function parses(s: string): boolean {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}

describe('JsonPrefix (the validator)', () => {
  test('agrees with JSON.parse on 60000 random strings over JSON characters', () => {
    const alphabet = ['{', '}', '[', ']', '"', ':', ',', ' ', '0', '1', '9', '-', '+', '.', 'e', 'E', 't', 'r', 'u', 'f', 'a', 'l', 's', 'n', '\\', 'x', '\n'];
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    let valid = 0;
    for (let i = 0; i < 60000; i++) {
      let s = '';
      const len = 1 + rand(10);
      for (let k = 0; k < len; k++) s += alphabet[rand(alphabet.length)];
      // seed some structure so that valid documents are not too rare
      if (i % 3 === 0) s = `{"${s}":1}`;
      if (i % 3 === 1) s = `[${s}]`;
      const want = parses(s) && s.trim().length > 0;
      if (validatorAccepts(s, 'any') !== want) throw new Error(`disagreement on ${JSON.stringify(s)}: JSON.parse says ${want}`);
      if (want) valid++;
    }
    expect(valid).toBeGreaterThan(300); // the comparison covered valid documents, not only rejections
  });

  test('every prefix of real documents is accepted; complete exactly at the end', () => {
    const docs = [
      { name: 'Ada', age: 36, tags: ['math', 'engines'], ratio: -1.5e-3, ok: true, none: null },
      { nested: { deep: [[], {}, [1, [2, [3]]]] }, empty: '', escapes: 'quote " backslash \\ tab \t nl \n ctrl \u0001' },
      { unicode: 'é ü 中文 😀', surrogate: '\ud83d\ude00', zero: 0, big: 12345678901234567890, frac: 0.25 },
    ];
    for (const d of docs) {
      for (const text of [JSON.stringify(d), JSON.stringify(d, null, 2), ` \n${JSON.stringify(d)}  `]) {
        const bytes = utf8(text);
        const p = new JsonPrefix('object');
        const end = bytes.length - (text.length - text.trimEnd().length);
        for (let i = 0; i < bytes.length; i++) {
          expect(p.feed([bytes[i]])).toBe(true);
          expect(p.complete).toBe(i >= end - 1);
        }
      }
    }
  });

  test('rejects at the first impossible byte, and object mode wants an object', () => {
    const rejectedAt = (s: string, topLevel: 'object' | 'any' = 'object') => {
      const p = new JsonPrefix(topLevel);
      const b = utf8(s);
      for (let i = 0; i < b.length; i++) if (!p.feed([b[i]])) return i;
      return -1;
    };
    expect(rejectedAt('{"a" 1}')).toBe(5);
    expect(rejectedAt('{,}')).toBe(1);
    expect(rejectedAt('{"a":01}')).toBe(6);
    expect(rejectedAt('{"a":1.}')).toBe(7);
    expect(rejectedAt('{"a":trux}')).toBe(8);
    expect(rejectedAt('{"a":"x\ty"}')).toBe(7); // a raw control character in a string
    expect(rejectedAt('{"a":1}}')).toBe(7);
    expect(rejectedAt('{"a":1} x')).toBe(8);
    expect(rejectedAt('{"a":[1,]}')).toBe(8);
    expect(rejectedAt('{"a":"\\q"}')).toBe(7);
    expect(rejectedAt('[1]')).toBe(0); // json_object: the top level is an object
    expect(rejectedAt('[1]', 'any')).toBe(-1);
    expect(rejectedAt('"\xff"', 'any')).toBe(-1); // (a JS string: U+00FF, two valid UTF-8 bytes)
    const p = new JsonPrefix('any');
    expect(p.feed([0x22, 0xff])).toBe(false); // but the byte 0xFF never occurs in UTF-8
  });
});

const describeChat = sharedModelDir() ? describe : describe.skip;
if (!sharedModelDir()) console.log('skipping JSON-mode chat tests: ../shared/models/nemotron-nano-9b-v2 (chat template) not found');

describeChat('JSON mode in chat turns and the server', () => {
  let f: ServerFixture;
  beforeAll(async () => {
    f = await startServerFixture();
  });
  afterAll(() => f?.close());

  const target = '{"name": "Ada", "langs": ["en", "fr"], "n": 2}';

  const pushTowardsInvalid = (reasoningIds: number[] = []) =>
    pushTowards(f.model.tokenizer, f.model.tokenizer.encode(target), reasoningIds);

  test('a chat turn in JSON mode refuses invalid tokens and ends with the object', async () => {
    const chat = f.model.createChatSession({ reasoning: 'off', sampling: { temperature: 0 } });
    const reply = await chat.send('Describe Ada as JSON.', { responseFormat: 'json', logitsProcessor: pushTowardsInvalid(), maxTokens: 200 });
    expect(reply.text).toBe(target);
    expect(JSON.parse(reply.text)).toEqual({ name: 'Ada', langs: ['en', 'fr'], n: 2 });
    expect(reply.finishReason).toBe('stop');
    expect(reply.usage.completionTokens).toBe(f.model.tokenizer.encode(target).length);
    chat.dispose();
  });

  test('the reasoning stays free; only the answer is constrained', async () => {
    const chat = f.model.createChatSession({ sampling: { temperature: 0 } });
    const thought = f.model.tokenizer.encode('Let me think: not JSON at all }}');
    const reply = await chat.send('Describe Ada as JSON.', { reasoning: 'on', responseFormat: 'json', logitsProcessor: pushTowardsInvalid(thought) });
    expect(reply.reasoning).toBe('Let me think: not JSON at all }}');
    expect(reply.text).toBe(target);
    chat.dispose();
  });

  test('without JSON mode the same pushes produce invalid text (the constraint is what fixes it)', async () => {
    const chat = f.model.createChatSession({ reasoning: 'off', sampling: { temperature: 0 } });
    const reply = await chat.send('Describe Ada as JSON.', { logitsProcessor: pushTowardsInvalid(), maxTokens: 20 });
    expect(() => JSON.parse(reply.text)).toThrow();
    chat.dispose();
  });

  test('sampled (not greedy) JSON-mode answers always parse', async () => {
    f.useProcessor(); // random weights, free sampling: whatever the f.model likes among valid tokens
    let stops = 0;
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const chat = f.model.createChatSession({ reasoning: 'off' });
      const reply = await chat.send('Some JSON please.', { responseFormat: 'json', temperature: 1, seed, maxTokens: 400 });
      if (reply.finishReason === 'stop') {
        expect(typeof JSON.parse(reply.text)).toBe('object');
        stops++;
      } else {
        expect(reply.finishReason).toBe('length'); // cut short: still a valid prefix
        expect(new JsonPrefix('object').feed(utf8(reply.text))).toBe(true);
      }
      chat.dispose();
    }
    expect(stops).toBeGreaterThan(0); // (some replies did finish their object)
  });

  test('server: response_format json_object', async () => {
    f.useProcessor(pushTowardsInvalid());
    const r = await f.client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'Describe Ada as JSON.' }],
      response_format: { type: 'json_object' },
      temperature: 0,
      chat_template_kwargs: { enable_thinking: false },
    } as never);
    const completion = r as unknown as OpenAI.Chat.Completions.ChatCompletion;
    expect(completion.choices[0].message.content).toBe(target);
    expect(completion.choices[0].finish_reason).toBe('stop');
  });
});
