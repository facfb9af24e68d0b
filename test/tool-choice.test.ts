/**
 * Required tool calls (send's toolChoice 'required'; the server's tool_choice
 * "required" or a named function): the answer is forced into
 * <TOOLCALL>[...]</TOOLCALL> with a valid JSON array even when the model would
 * rather write text; later rounds of a send with handlers are free again.
 */
import OpenAI from 'openai';
import { z } from 'zod';

import { InvalidArgumentError } from '../lib';
import type { LogitsContext } from '../lib/chat/turn';
import { pushTowardsInvalid } from './helpers/constrained';
import { postJson, startServerFixture, type ServerFixture } from './helpers/server-fixture';
import { sharedModelDir } from './helpers/test-tokenizer';

const describeChat = sharedModelDir() ? describe : describe.skip;
if (!sharedModelDir()) console.log('skipping tool-choice tests: ../shared/models/nemotron-nano-9b-v2 (chat template) not found');

describeChat('required tool calls', () => {
  let f: ServerFixture;
  beforeAll(async () => {
    f = await startServerFixture();
  });
  afterAll(() => f?.close());

  const callJson = '[{"name": "get_weather", "arguments": {"city": "Paris"}}]';
  /** The ids of `<TOOLCALL>` + callJson + `</TOOLCALL>`. */
  const callIds = () => {
    const tok = f.model.tokenizer;
    return [tok.special.toolCall!, ...tok.encode(callJson), tok.special.toolCallEnd!];
  };
  const weather = { description: 'Weather in a city', parameters: z.object({ city: z.string() }) };

  test('the answer becomes the tool call though the f.model pushes text first', async () => {
    const chat = f.model.createChatSession({ reasoning: 'off', sampling: { temperature: 0 }, tools: { get_weather: weather } });
    const reply = await chat.send('Weather in Paris?', { toolChoice: 'required', logitsProcessor: pushTowardsInvalid(f.model.tokenizer, callIds()) });
    expect(reply.finishReason).toBe('toolCalls');
    expect(reply.toolCalls).toHaveLength(1);
    expect(reply.toolCalls[0]).toMatchObject({ name: 'get_weather', arguments: { city: 'Paris' } });
    expect(reply.toolCalls[0].error).toBeUndefined();
    expect(reply.text).toBe('');
    chat.dispose();
  });

  test('without toolChoice the same pushes give text, not a call', async () => {
    const chat = f.model.createChatSession({ reasoning: 'off', sampling: { temperature: 0 }, tools: { get_weather: weather } });
    const reply = await chat.send('Weather in Paris?', { logitsProcessor: pushTowardsInvalid(f.model.tokenizer, callIds()), maxTokens: 10 });
    expect(reply.toolCalls).toHaveLength(0);
    expect(reply.text.length).toBeGreaterThan(0);
    chat.dispose();
  });

  test('with a handler, only the first round is forced: the next one answers in text', async () => {
    const calls: unknown[] = [];
    const tools = { get_weather: { ...weather, handler: (args: unknown) => (calls.push(args), 'sunny') } };
    const chat = f.model.createChatSession({ reasoning: 'off', sampling: { temperature: 0 }, tools });
    const tok = f.model.tokenizer;
    const first = pushTowardsInvalid(tok, callIds());
    const answer = [...tok.encode('It is sunny.'), tok.special.endOfTurn!];
    let round = -1;
    const reply = await chat.send('Weather in Paris?', {
      toolChoice: 'required',
      logitsProcessor: (logits, ctx) => {
        if (ctx.step === 0) round++;
        if (round === 0) return first(logits, ctx);
        logits.fill(-Infinity);
        logits[answer[Math.min(ctx.step, answer.length - 1)]] = 0;
      },
    });
    expect(calls).toEqual([{ city: 'Paris' }]);
    expect(reply.text).toBe('It is sunny.');
    expect(reply.finishReason).toBe('stop');
    chat.dispose();
  });

  test('strictToolCalls: a call the f.model starts by itself is generated under the schemas', async () => {
    const tok = f.model.tokenizer;
    // the f.model opens a call at its first answer step, then samples freely (random weights: anything)
    const openCall = (logits: Float32Array, ctx: LogitsContext) => {
      if (ctx.channel === 'text' && ctx.step === 0) {
        logits.fill(-Infinity);
        logits[tok.special.toolCall!] = 0;
      }
    };
    let complete = 0;
    let brokenWithout = 0;
    for (const seed of [1, 2, 3, 4]) {
      for (const strict of [true, false]) {
        const chat = f.model.createChatSession({ reasoning: 'off', tools: { get_weather: weather } });
        const reply = await chat.send('Weather?', { strictToolCalls: strict, logitsProcessor: openCall, temperature: 1, seed, maxTokens: 300 });
        chat.dispose();
        if (!strict) {
          if (reply.invalidToolCalls.length > 0 || reply.toolCalls.some((c) => c.error)) brokenWithout++;
          continue;
        }
        if (reply.finishReason === 'length') continue; // cut short inside the call
        expect(reply.finishReason).toBe('toolCalls');
        expect(reply.invalidToolCalls).toEqual([]);
        for (const c of reply.toolCalls) {
          expect(c.name).toBe('get_weather');
          expect(c.error).toBeUndefined();
        }
        complete++;
      }
    }
    expect(complete).toBeGreaterThan(0);
    expect(brokenWithout).toBeGreaterThan(0); // without it, the same sampling writes calls that do not parse or validate
  });

  test('chat.stream() yields the call as it is generated, then parsed', async () => {
    const chat = f.model.createChatSession({ reasoning: 'off', sampling: { temperature: 0 }, tools: { get_weather: weather } });
    const events: string[] = [];
    let args = '';
    for await (const ev of chat.stream('Weather in Paris?', { toolChoice: 'required', logitsProcessor: pushTowardsInvalid(f.model.tokenizer, callIds()) })) {
      if (ev.type === 'toolCallDelta') {
        if (ev.delta.name) events.push(`name:${ev.delta.name}`);
        if (ev.delta.arguments) args += ev.delta.arguments;
      } else events.push(ev.type);
    }
    expect(events[0]).toBe('name:get_weather');
    expect(JSON.parse(args)).toEqual({ city: 'Paris' });
    expect(events.slice(-2)).toEqual(['toolCall', 'done']);
    chat.dispose();
  });

  test('required without tools, or with JSON mode, is an InvalidArgumentError', async () => {
    const chat = f.model.createChatSession({ reasoning: 'off' });
    await expect(chat.send('hi', { toolChoice: 'required' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(chat.send('hi', { toolChoice: 'required', responseFormat: 'json', tools: { get_weather: weather } })).rejects.toThrow(
      /cannot be combined/,
    );
    chat.dispose();
  });

  const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = [
    { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } },
    { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {} } } },
  ];

  test('server: tool_choice "required" and a named function force the call', async () => {
    for (const toolChoice of ['required', { type: 'function', function: { name: 'get_weather' } }] as const) {
      f.useProcessor(pushTowardsInvalid(f.model.tokenizer, callIds()));
      const r = await f.client.chat.completions.create({
        model: 'tiny',
        messages: [{ role: 'user', content: 'Weather in Paris?' }],
        tools,
        tool_choice: toolChoice,
        temperature: 0,
        chat_template_kwargs: { enable_thinking: false },
      } as never);
      const c = (r as unknown as OpenAI.Chat.Completions.ChatCompletion).choices[0];
      expect(c.finish_reason).toBe('tool_calls');
      expect(c.message.tool_calls?.[0]).toMatchObject({ type: 'function', function: { name: 'get_weather' } });
      expect(JSON.parse((c.message.tool_calls![0] as { function: { arguments: string } }).function.arguments)).toEqual({ city: 'Paris' });
    }
  });

  test('server: tool_choice "required" without tools is a 400', async () => {
    const r = await postJson(`${f.server.url}/v1/chat/completions`, {
      model: 'tiny',
      messages: [{ role: 'user', content: 'hi' }],
      tool_choice: 'required',
    });
    expect(r.status).toBe(400);
    expect(r.json.error.param).toBe('tool_choice');
  });
});
