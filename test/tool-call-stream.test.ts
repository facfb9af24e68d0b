/**
 * ToolCallStreamer: tool calls reported while their block is generated. Fed the
 * block in pieces of every size, the deltas put back together must give the
 * names and arguments the final parser (parseToolCalls) reads from the whole block.
 */
import { ToolCallStreamer, type ToolCallDelta } from '../lib/chat/tool-call-stream';
import { parseToolCalls } from '../lib/chat/tool-calls';
import { ToolCallRelay } from '../lib/server/tool-call-relay';

/** Feeds `body` in pieces of `size` characters and reassembles the calls from the deltas. */
function streamed(body: string, size: number) {
  const s = new ToolCallStreamer();
  const deltas: ToolCallDelta[] = [];
  for (let i = 0; i < body.length; i += size) deltas.push(...s.push(body.slice(i, i + size)));
  const calls: Array<{ name: string; args: string }> = [];
  for (const d of deltas) {
    if (d.name !== undefined) {
      expect(d.index).toBe(calls.length); // numbered in order, named before any arguments
      calls.push({ name: d.name, args: '' });
    }
    if (d.arguments) calls[d.index].args += d.arguments;
  }
  return { calls, deltas };
}

const bodies = [
  '[{"name": "get_weather", "arguments": {"city": "Paris", "days": [1, 2], "opts": {"u": "c"}}}]',
  '[{"name":"a","arguments":{}},{"name":"b_2","arguments":{"s":"x, } ] \\" y","n":-1.5e3,"t":true,"z":null}}]',
  '[ {"arguments": {"k": [[], {}]}, "name": "late_name"} , {"name": "n", "arguments": 7} ]',
  '[{"name": "esc\\u0061ped", "arguments": {"q": "\\u00e9"}}, {"id": "x", "name": "with_id", "arguments": {"a": 1}}]',
];

describe('ToolCallStreamer', () => {
  test.each(bodies)('pieces of any size reassemble into the parsed calls: %s', (body) => {
    const parsed = parseToolCalls(`<TOOLCALL>${body}</TOOLCALL>`).toolCalls;
    for (const size of [1, 2, 3, 5, 8, 13, body.length]) {
      const { calls } = streamed(body, size);
      expect(calls.map((c) => c.name)).toEqual(parsed.map((p) => p.name));
      expect(calls.map((c) => JSON.parse(c.args))).toEqual(parsed.map((p) => p.arguments));
    }
  });

  test('arguments arrive while they are generated, not at the end', () => {
    const body = bodies[0];
    const { deltas } = streamed(body, 4);
    const withArgs = deltas.filter((d) => d.arguments);
    expect(withArgs.length).toBeGreaterThan(10);
  });

  test('arguments written as a JSON string are left to the parsed call; items without a name are not calls', () => {
    const { calls } = streamed('[{"name": "f", "arguments": "{\\"a\\": 1}"}, {"arguments": {}}, 42, {"name": "", "arguments": {}}]', 3);
    expect(calls).toEqual([{ name: 'f', args: '' }]);
    expect(streamed('{"name": "f", "arguments": {}}', 2).calls).toEqual([]); // no list brackets: parsed at the end only
  });
});

describe('ToolCallRelay (the server side of streamed tool calls)', () => {
  /** Runs blocks through a streamer and the relay the way a turn does; returns the OpenAI deltas sent. */
  function relay(blocks: string[]) {
    const sent: Array<Record<string, any>> = [];
    const r = new ToolCallRelay((calls) => sent.push(...calls));
    for (const body of blocks) {
      const s = new ToolCallStreamer();
      for (let i = 0; i < body.length; i += 3) for (const d of s.push(body.slice(i, i + 3))) r.delta(d);
      for (const c of parseToolCalls(`<TOOLCALL>${body}</TOOLCALL>`).toolCalls) r.call({ ...c });
    }
    // what a client reassembles: per index, the first id/name and all argument pieces
    const calls = new Map<number, { id?: string; name?: string; args: string }>();
    for (const d of sent) {
      const c = calls.get(d.index) ?? { args: '' };
      c.id ??= d.id;
      c.name ??= d.function?.name;
      c.args += d.function?.arguments ?? '';
      calls.set(d.index, c);
    }
    return [...calls.entries()].sort((a, b) => a[0] - b[0]).map(([index, c]) => ({ index, ...c, args: JSON.parse(c.args) }));
  }

  test('streamed, string-valued and bracket-less calls all reach the client complete, indexed across blocks', () => {
    const got = relay([
      '[{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": "{\\"y\\": 2}"}]',
      '{"name": "c", "arguments": {"z": [3]}}',
    ]);
    expect(got.map(({ index, name, args }) => ({ index, name, args }))).toEqual([
      { index: 0, name: 'a', args: { x: 1 } },
      { index: 1, name: 'b', args: { y: 2 } },
      { index: 2, name: 'c', args: { z: [3] } },
    ]);
    expect(got.every((c) => typeof c.id === 'string')).toBe(true);
  });
});
