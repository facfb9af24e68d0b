/**
 * The Nemotron chat template rendered through lib/chat/template.ts against the reference
 * renders kept in ../shared/models/nemotron-nano-9b-v2, plus transformers'
 * apply_chat_template semantics (continue_final_message cut, variables, errors).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InvalidArgumentError, ModelLoadError } from '../lib/errors';
import { ChatMessage, ChatTemplate, renderChat } from '../lib/chat/template';
import { Tokenizer } from '../lib/chat/tokenizer';
import { sharedModelDir, writeTestTokenizer } from './helpers/test-tokenizer';

const shared = sharedModelDir();
const describeShared = shared ? describe : describe.skip;
if (!shared)
  // eslint-disable-next-line no-console
  console.log('skipping Nemotron template tests: ../shared/models/nemotron-nano-9b-v2 not found (set NEMOTRON_SHARED_MODELS)');

interface ReferenceCase {
  context: { messages: ChatMessage[]; tools?: unknown[]; add_generation_prompt?: boolean };
  rendered: string;
}
const REFERENCE_FILE = 'chat_template.rendered-by-hf-jinja-0.5.11.json';

describeShared('Nemotron-Nano-9B-v2 chat template', () => {
  const template = shared ? fs.readFileSync(path.join(shared, 'chat_template.jinja'), 'utf8') : '';
  const cases: [string, ReferenceCase][] = shared
    ? Object.entries(JSON.parse(fs.readFileSync(path.join(shared, REFERENCE_FILE), 'utf8')))
    : [];

  test('the reference file has all 12 cases', () => {
    expect(cases.map(([name]) => name)).toHaveLength(12);
  });

  test.each(cases)('renders %s exactly like the reference', (_name, c) => {
    const out = renderChat(template, {
      messages: c.context.messages,
      tools: c.context.tools,
      addGenerationPrompt: c.context.add_generation_prompt,
    });
    expect(out).toBe(c.rendered);
  });

  const sys = { role: 'system', content: 'You are a helpful assistant.' };
  const user = { role: 'user', content: 'What is 2+2?' };
  const BUDGET_PREFIX =
    '<SPECIAL_10>System\nYou are a helpful assistant.\n\n<SPECIAL_11>User\nWhat is 2+2?\n<SPECIAL_11>Assistant\n<think>\n\n';

  test('continueFinalMessage reproduces the thinking-budget step-2 prompt (spec §4.4)', () => {
    // §5.1: the client closes the reasoning with ".\n</think>\n\n"; the template strips it and
    // HF cuts after the final content, so the prompt ends at "</think>" with no <SPECIAL_12>.
    for (const content of ['Okay, 2+2 is 4.\n</think>\n\n', 'Okay, 2+2 is 4.\n</think>']) {
      const out = renderChat(template, { messages: [sys, user, { role: 'assistant', content }], continueFinalMessage: true });
      expect(out).toBe(BUDGET_PREFIX + 'Okay, 2+2 is 4.\n</think>');
    }
  });

  test('without continueFinalMessage the final assistant turn is closed', () => {
    const out = renderChat(template, { messages: [sys, user, { role: 'assistant', content: 'Okay.\n</think>\n\n4' }] });
    expect(out.endsWith('<think>\n\nOkay.\n</think>\n\n4\n<SPECIAL_12>\n\n')).toBe(true);
  });

  test('/think and /no_think: the last signal in system/user messages wins and is removed', () => {
    const on = renderChat(template, {
      messages: [{ role: 'system', content: 'Be brief. /no_think' }, { role: 'user', content: 'Hi /think' }],
      addGenerationPrompt: true,
    });
    expect(on).toBe('<SPECIAL_10>System\nBe brief.\n\n<SPECIAL_11>User\nHi\n<SPECIAL_11>Assistant\n<think>\n\n');
    const off = renderChat(template, {
      messages: [{ role: 'system', content: '/think' }, { role: 'user', content: '/no_think Hi' }],
      addGenerationPrompt: true,
    });
    expect(off.endsWith('<SPECIAL_11>User\nHi\n<SPECIAL_11>Assistant\n<think></think>')).toBe(true);
  });

  test('the template loaded through Tokenizer renders the same, and the prompt tokenizes to control-token ids', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nemotron-tpl-'));
    try {
      const info = writeTestTokenizer(dir);
      const tok = await Tokenizer.fromDir(dir);
      const [, c] = cases.find(([name]) => name === 'tool_call_and_response_gen')!;
      const out = renderChat(tok.chatTemplate!, {
        ...tok.templateVariables,
        messages: c.context.messages,
        tools: c.context.tools,
        addGenerationPrompt: true,
      });
      expect(out).toBe(c.rendered);
      const ids = tok.encode(out);
      expect(ids[0]).toBe(info.ids['<SPECIAL_10>']);
      const tail = [info.ids['<think>'], ...tok.encode('\n\n')];
      expect(ids.slice(-tail.length)).toEqual(tail);
      const used = ['<AVAILABLE_TOOLS>', '</AVAILABLE_TOOLS>', '<TOOLCALL>', '</TOOLCALL>', '<TOOL_RESPONSE>', '</TOOL_RESPONSE>'] as const;
      for (const t of [...used, '<SPECIAL_12>'] as const) expect(ids).toContain(info.ids[t]);
      expect(ids).not.toContain(info.ids['<s>']); // chat prompts carry no BOS (spec §4.1)
      expect(tok.decode(ids)).toBe(out);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('renderChat semantics (toy templates)', () => {
  const echo = '{% for m in messages %}{{ m.role }}: {{ m.content }}|{% endfor %}';
  const trimmed = '{% for m in messages %}{{ m.role }}: {{ m.content | trim }}|{% endfor %}';
  const u = { role: 'user', content: 'Hi' };

  test('continueFinalMessage keeps trailing space the template kept, drops what it stripped (HF rule)', () => {
    const messages = [u, { role: 'assistant', content: 'Hello ' }];
    expect(renderChat(echo, { messages, continueFinalMessage: true })).toBe('user: Hi|assistant: Hello ');
    expect(renderChat(trimmed, { messages, continueFinalMessage: true })).toBe('user: Hi|assistant: Hello');
    // the LAST occurrence is used, so an earlier identical text does not cut the prompt short
    const repeated = [{ role: 'user', content: 'same' }, { role: 'assistant', content: 'same' }];
    expect(renderChat(echo, { messages: repeated, continueFinalMessage: true })).toBe('user: same|assistant: same');
    // content blocks: the last text block is continued
    const blocks = [u, { role: 'assistant', content: [{ type: 'text', text: 'A' }, { type: 'text', text: 'B' }] }];
    expect(renderChat('{{ messages[1].content[1].text }}!', { messages: blocks, continueFinalMessage: true })).toBe('B');
  });

  test('extra variables, generation prompt flag and HF defaults reach the template', () => {
    const tpl =
      '{{ bos_token }}{{ foo }}{% if add_generation_prompt %}G{% endif %}' +
      '{% if tools is defined and tools is none %}T{% endif %}{% if documents is none %}D{% endif %}';
    expect(renderChat(tpl, { messages: [u], bos_token: '<s>', foo: 'x', addGenerationPrompt: true })).toBe('<s>xGTD');
    expect(renderChat(tpl, { messages: [u], bos_token: '<s>', foo: 'y' })).toBe('<s>yTD');
    const withTools = renderChat('{{ tools | length }}', { messages: [u], tools: [{ a: 1 }, { b: 2 }] });
    expect(withTools).toBe('2');
  });

  test('trim_blocks / lstrip_blocks are on, as in transformers', () => {
    const tpl = '{% for m in messages %}\n  {% if true %}\n{{ m.content }}\n  {% endif %}\n{% endfor %}';
    expect(renderChat(tpl, { messages: [u, u] })).toBe('Hi\nHi\n');
  });

  test('errors: bad options, missing final text, template syntax and raise_exception', () => {
    expect(() => renderChat(echo, { messages: [u], addGenerationPrompt: true, continueFinalMessage: true })).toThrow(InvalidArgumentError);
    expect(() => renderChat(echo, { messages: [] })).toThrow(InvalidArgumentError);
    expect(() => renderChat('{{ "X" }}', { messages: [u], continueFinalMessage: true })).toThrow(/does not appear/);
    let err: unknown;
    try {
      new ChatTemplate('{% for m in messages %}');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ModelLoadError);
    expect((err as ModelLoadError).code).toBe('ERR_CHAT_TEMPLATE');
    expect(() => renderChat('{{ raise_exception("no system role") }}', { messages: [u] })).toThrow(/no system role/);
    expect(() => renderChat('{{ raise_exception("x") }}', { messages: [u] })).toThrow(InvalidArgumentError);
  });
});
