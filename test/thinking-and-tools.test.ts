import { ThinkingController, thinkingBudgetSchema } from '../lib/chat/thinking';
import { parseToolCalls } from '../lib/chat/tool-calls';

const ids = { thinkEnd: [900], endOfTurn: [901] };

describe('ThinkingController', () => {
  test('closes exactly at maxTokens without grace, with the recipe text', () => {
    const c = new ThinkingController({ maxTokens: 3 }, ids);
    expect(c.observe('a')).toEqual({ kind: 'continue' });
    expect(c.observe('b')).toEqual({ kind: 'continue' });
    expect(c.observe('c')).toEqual({ kind: 'close', text: '.\n</think>' });
    expect(c.reasoningTokens).toBe(3);
    expect(c.observe('d')).toEqual({ kind: 'continue' }); // closed: no longer counting
    expect(c.reasoningTokens).toBe(3);
  });

  test('after a newline the thought is closed with "</think>" alone', () => {
    const c = new ThinkingController({ maxTokens: 2 }, ids);
    c.observe('x');
    expect(c.observe('done.\n')).toEqual({ kind: 'close', text: '</think>' });
  });

  test('grace: waits for a newline up to graceTokens more', () => {
    const c = new ThinkingController({ maxTokens: 2, graceTokens: 3 }, ids);
    c.observe('a');
    expect(c.observe('b')).toEqual({ kind: 'continue' }); // at budget, no newline, grace open
    expect(c.observe('c')).toEqual({ kind: 'continue' });
    expect(c.observe('d\n')).toEqual({ kind: 'close', text: '</think>' });
    const d = new ThinkingController({ maxTokens: 2, graceTokens: 2 }, ids);
    d.observe('a');
    d.observe('b');
    d.observe('c');
    expect(d.observe('e')).toEqual({ kind: 'close', text: '.\n</think>' }); // grace exhausted
    expect(d.reasoningTokens).toBe(4); // maxTokens + graceTokens at most
  });

  test('minTokens masks end-of-thinking and end-of-turn until reached', () => {
    const c = new ThinkingController({ maxTokens: 10, minTokens: 2 }, ids);
    expect(c.mask()).toEqual([900, 901]);
    c.observe('a');
    expect(c.mask()).toEqual([900, 901]);
    c.observe('b');
    expect(c.mask()).toEqual([]);
  });

  test('no budget: never closes, never masks', () => {
    const c = new ThinkingController(undefined, ids);
    for (let i = 0; i < 100; i++) expect(c.observe('z')).toEqual({ kind: 'continue' });
    expect(c.mask()).toEqual([]);
  });

  test('budget options are validated', () => {
    expect(thinkingBudgetSchema.safeParse({ maxTokens: 5, minTokens: 6 }).success).toBe(false);
    expect(thinkingBudgetSchema.safeParse({ maxTokens: -1 }).success).toBe(false);
    expect(thinkingBudgetSchema.safeParse({ maxTokens: 0 }).success).toBe(true);
  });
});

describe('parseToolCalls', () => {
  let n = 0;
  const id = () => `id${++n}`;
  test('plain text has no calls', () => {
    expect(parseToolCalls('Hello there', id)).toEqual({ content: 'Hello there', toolCalls: [], invalid: [] });
  });
  test('one or several calls in a list, content before the block', () => {
    const r = parseToolCalls(
      'Let me check.\n\n<TOOLCALL>[{"name": "calculate_tip", "arguments": {"bill_total": 100, "tip_percentage": 18}}, {"name": "now", "arguments": "{}"}]</TOOLCALL>',
      id,
    );
    expect(r.content).toBe('Let me check.');
    expect(r.toolCalls.map((c) => [c.name, c.arguments])).toEqual([
      ['calculate_tip', { bill_total: 100, tip_percentage: 18 }],
      ['now', {}],
    ]);
    expect(r.invalid).toEqual([]);
  });
  test('missing brackets are tolerated, like the reference parser', () => {
    const r = parseToolCalls('<TOOLCALL>{"name": "f", "arguments": {"a": 1}}</TOOLCALL>', id);
    expect(r.toolCalls[0]).toMatchObject({ name: 'f', arguments: { a: 1 } });
  });
  test('malformed calls are reported, not dropped silently', () => {
    expect(parseToolCalls('<TOOLCALL>[{"name": "f", "arguments": {]</TOOLCALL>', id).invalid[0].error).toMatch(/invalid JSON/);
    expect(parseToolCalls('<TOOLCALL>[{"arguments": {}}]</TOOLCALL>', id).invalid[0].error).toMatch(/missing "name"/);
    expect(parseToolCalls('<TOOLCALL>[42]</TOOLCALL>', id).invalid[0].error).toMatch(/must be an object/);
    expect(parseToolCalls('x <TOOLCALL>[{"name": "f"', id).invalid[0].error).toMatch(/unterminated/);
  });
});
