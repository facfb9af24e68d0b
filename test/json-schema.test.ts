/**
 * JSON Schema output (lib/chat/json-schema.ts + the schema-guided JsonPrefix):
 * documents the schema allows are accepted byte by byte; mutated documents are
 * accepted only when JSON.parse and an independent checker of the same schema
 * subset agree; then chat turns and the server's response_format json_schema.
 */
import OpenAI from 'openai';

import { InvalidArgumentError } from '../lib';
import { JsonPrefix } from '../lib/chat/json-constraint';
import { compileSchema, toolCallSchema } from '../lib/chat/json-schema';
import { pushTowardsInvalid } from './helpers/constrained';
import { postJson, startServerFixture, type ServerFixture } from './helpers/server-fixture';
import { sharedModelDir } from './helpers/test-tokenizer';

const utf8 = (s: string) => new TextEncoder().encode(s);

const person = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    age: { type: 'integer' },
    tags: { type: 'array', items: { type: 'string' }, maxItems: 2 },
    color: { enum: ['red', 'green', 'greenish'] },
    nick: { type: ['string', 'null'] },
    score: { type: 'number' },
    ok: { type: 'boolean' },
  },
  required: ['name', 'age'],
  additionalProperties: false,
};

/** An independent checker of the schema subset used here (what a value must be, after parsing). */
function conforms(v: unknown, s: any): boolean {
  if (s.enum) return s.enum.some((e: unknown) => JSON.stringify(e) === JSON.stringify(v));
  const types: string[] = Array.isArray(s.type) ? s.type : [s.type];
  const typeOf = (x: unknown) =>
    x === null ? 'null' : Array.isArray(x) ? 'array' : Number.isInteger(x) ? 'integer' : typeof x === 'number' ? 'number' : typeof x;
  const t = typeOf(v);
  if (!types.includes(t) && !(t === 'integer' && types.includes('number'))) return false;
  if (t === 'object') {
    const o = v as Record<string, unknown>;
    if ((s.required ?? []).some((r: string) => !(r in o))) return false;
    return Object.entries(o).every(([k, x]) => (s.properties?.[k] ? conforms(x, s.properties[k]) : s.additionalProperties !== false));
  }
  if (t === 'array') {
    const a = v as unknown[];
    if (s.maxItems !== undefined && a.length > s.maxItems) return false;
    return a.every((x) => conforms(x, s.items ?? {}));
  }
  return true;
}

function accepts(schema: unknown, text: string): boolean {
  const p = new JsonPrefix(compileSchema(schema));
  return p.feed(utf8(text + ' ')) && p.complete;
}

describe('JSON Schema, compiled for constrained decoding', () => {
  test('accepts conforming documents byte by byte; complete exactly at the end', () => {
    const docs = [
      { name: 'a', age: 3 },
      { age: 30, name: 'Zoë', tags: ['x', 'y'], color: 'greenish', nick: null, score: -1.5e3, ok: false },
      { name: '', age: 0, color: 'green', nick: 'q', tags: [] },
    ];
    for (const d of docs) {
      for (const text of [JSON.stringify(d), JSON.stringify(d, null, 2)]) {
        const p = new JsonPrefix(compileSchema(person));
        const bytes = utf8(text);
        for (let i = 0; i < bytes.length; i++) {
          expect(p.feed([bytes[i]])).toBe(true);
          expect(p.complete).toBe(i === bytes.length - 1);
        }
      }
    }
  });

  test('rejects at the first byte that leaves the schema', () => {
    const rejectedAt = (text: string) => {
      const p = new JsonPrefix(compileSchema(person));
      const b = utf8(text);
      for (let i = 0; i < b.length; i++) if (!p.feed([b[i]])) return i;
      return -1;
    };
    expect(rejectedAt('{"nm"')).toBe(3); // no declared key starts with "nm"
    expect(rejectedAt('{"name":1')).toBe(8); // a string was due
    expect(rejectedAt('{"age":1.5')).toBe(8); // an integer
    expect(rejectedAt('{"name":"a"}')).toBe(11); // "age" is required
    expect(rejectedAt('{"name":"a","name"')).toBe(14); // no key twice: "na" starts no key still allowed
    expect(rejectedAt('{"name":"a","age":1,"tags":["a","b",')).toBe(35); // at most 2 tags
    expect(rejectedAt('{"color":"blue"')).toBe(10);
    expect(rejectedAt('{"name":"a","age":1,"extra"')).toBe(21); // additionalProperties false: no key starts with "e"
    expect(rejectedAt('{"ok":nul')).toBe(6); // a boolean
    expect(rejectedAt('{"nick":null,"nick2"')).toBe(15); // "ni": nick is written already, and no other key starts so
    expect(rejectedAt('[]')).toBe(0);
  });

  test('agrees with JSON.parse + an independent checker on 20000 mutated documents', () => {
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const pick = <T>(xs: T[]) => xs[rand(xs.length)];
    const alphabet = '{}[]":,0123456789.-eE tfnrulsa"'.split('');
    let accepted = 0;
    for (let i = 0; i < 20000; i++) {
      const d: Record<string, unknown> = { name: pick(['a', 'bo', '']), age: rand(100) };
      if (rand(2)) d.tags = Array.from({ length: rand(3) }, () => pick(['x', 'yz']));
      if (rand(2)) d.color = pick(['red', 'green', 'greenish']);
      if (rand(2)) d.nick = pick([null, 'n']);
      if (rand(2)) d.score = pick([1.5, -2, 3e5]);
      let text = JSON.stringify(d);
      const edits = rand(3);
      for (let e = 0; e < edits; e++) {
        const at = rand(text.length + 1);
        text = rand(2) ? text.slice(0, at) + pick(alphabet) + text.slice(at) : text.slice(0, at) + text.slice(at + 1);
      }
      let want = false;
      try {
        want = conforms(JSON.parse(text), person) && text.trim() === text;
      } catch {
        want = false;
      }
      const got = accepts(person, text);
      if (got !== want) throw new Error(`disagreement on ${text}: checker says ${want}`);
      if (got) accepted++;
    }
    expect(accepted).toBeGreaterThan(5000);
  });

  test('$ref recursion, unions told apart by the first character, and errors for the rest', () => {
    const tree = {
      $defs: { node: { type: 'object', properties: { v: { type: 'integer' }, kids: { type: 'array', items: { $ref: '#/$defs/node' } } }, required: ['v'], additionalProperties: false } },
      $ref: '#/$defs/node',
    };
    expect(accepts(tree, '{"v":1,"kids":[{"v":2},{"v":3,"kids":[{"v":4}]}]}')).toBe(true);
    expect(accepts(tree, '{"v":1,"kids":[{"w":2}]}')).toBe(false);
    const union = { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'integer' } }, { type: 'null' }] };
    expect(accepts(union, '"s"')).toBe(true);
    expect(accepts(union, '[1,2]')).toBe(true);
    expect(accepts(union, 'null')).toBe(true);
    expect(accepts(union, '[1.5]')).toBe(false);
    expect(accepts(union, '{}')).toBe(false);
    const map = { type: 'object', additionalProperties: { type: 'integer' } };
    expect(accepts(map, '{"x":1,"y":2}')).toBe(true);
    expect(accepts(map, '{"x":"s"}')).toBe(false);
    expect(accepts(map, '{"x":1,"x":2}')).toBe(false); // no key twice
    expect(() => compileSchema({ anyOf: [{ type: 'object' }, { type: 'object' }] })).toThrow(InvalidArgumentError);
    expect(() => compileSchema({ allOf: [{ type: 'object' }] })).toThrow(/"allOf" is not supported/);
    expect(() => compileSchema({ $ref: '#/nowhere' })).toThrow(/cannot resolve/);
  });
});

describe('tool-call lists (toolCallSchema)', () => {
  const tools = [
    { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city'], additionalProperties: false } },
    { name: 'get_time', parameters: { type: 'object', properties: {}, additionalProperties: false } },
    { name: 'odd', parameters: { allOf: [{ type: 'object' }] } }, // cannot be enforced: free-form arguments
  ];
  const rejectedAt = (text: string) => {
    const p = new JsonPrefix(toolCallSchema(tools));
    const b = utf8(text);
    for (let i = 0; i < b.length; i++) if (!p.feed([b[i]])) return i;
    return p.complete ? -1 : -2; // -2: a valid but unfinished prefix
  };

  test('calls of declared tools, each with its own arguments schema', () => {
    expect(rejectedAt('[{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}]')).toBe(-1);
    expect(rejectedAt('[{"name":"get_time","arguments":{}},{"name":"get_weather","arguments":{"city":"Oslo"}}]')).toBe(-1);
    expect(rejectedAt('[{"name":"odd","arguments":{"anything":[1,{"x":null}]}}]')).toBe(-1);
  });

  test('refuses unknown tools, arguments before the name, and arguments the tool does not take', () => {
    expect(rejectedAt('[]')).toBe(1); // at least one call
    expect(rejectedAt('[{"name":"get_wx')).toBe(15);
    expect(rejectedAt('[{"arguments"')).toBe(3); // the name comes first
    expect(rejectedAt('[{"name":"get_weather","arguments":{"city":1')).toBe(43);
    expect(rejectedAt('[{"name":"get_weather","arguments":{}')).toBe(36); // city is required
    expect(rejectedAt('[{"name":"get_time","arguments":{"city"')).toBe(33); // get_time takes nothing
    expect(rejectedAt('[{"name":"get_weather","arguments":{"city":"x","days":1.5')).toBe(55);
    expect(rejectedAt('[{"name":"get_weather","arguments":{"city":"x"}')).toBe(-2);
  });
});

const describeChat = sharedModelDir() ? describe : describe.skip;
if (!sharedModelDir()) console.log('skipping JSON-schema chat tests: ../shared/models/nemotron-nano-9b-v2 (chat template) not found');

describeChat('JSON Schema answers in chat turns and the server', () => {
  let f: ServerFixture;
  beforeAll(async () => {
    f = await startServerFixture();
  });
  afterAll(() => f?.close());

  const target = '{"name": "Ada", "age": 36, "tags": ["math"]}';

  test('the answer follows the schema, refusing the invalid tokens pushed at every step', async () => {
    const chat = f.model.createChatSession({ reasoning: 'off', sampling: { temperature: 0 } });
    const reply = await chat.send('Describe Ada.', {
      responseFormat: { schema: person },
      logitsProcessor: pushTowardsInvalid(f.model.tokenizer, f.model.tokenizer.encode(target)),
    });
    expect(reply.text).toBe(target);
    expect(reply.finishReason).toBe('stop');
    chat.dispose();
  });

  test('freely sampled answers conform whenever they finish', async () => {
    let finished = 0;
    const small = { type: 'object', properties: { ok: { type: 'boolean' }, n: { type: 'integer' }, c: { enum: ['x', 'y'] } }, required: ['ok', 'n', 'c'], additionalProperties: false };
    for (const seed of [1, 2, 3, 4]) {
      const chat = f.model.createChatSession({ reasoning: 'off' });
      const reply = await chat.send('JSON please.', { responseFormat: { schema: small }, temperature: 1, seed, maxTokens: 200 });
      if (reply.finishReason === 'stop') {
        expect(conforms(JSON.parse(reply.text), small)).toBe(true);
        finished++;
      }
      chat.dispose();
    }
    expect(finished).toBeGreaterThan(0);
  });

  test('server: response_format json_schema, and a 400 for a schema it cannot enforce', async () => {
    f.useProcessor(pushTowardsInvalid(f.model.tokenizer, f.model.tokenizer.encode(target)));
    const r = (await f.client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'Describe Ada.' }],
      response_format: { type: 'json_schema', json_schema: { name: 'person', schema: person, strict: true } },
      temperature: 0,
      chat_template_kwargs: { enable_thinking: false },
    } as never)) as unknown as OpenAI.Chat.Completions.ChatCompletion;
    expect(r.choices[0].message.content).toBe(target);
    const bad = await postJson(`${f.server.url}/v1/chat/completions`, {
      model: 'tiny',
      messages: [{ role: 'user', content: 'hi' }],
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { allOf: [] } } },
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error.param).toBe('response_format');
    expect(bad.json.error.message).toMatch(/allOf/);
  });
});
