import { StreamSplitter } from '../lib/chat/stream-splitter';

function run(markers: string[], chunks: string[]) {
  const s = new StreamSplitter(markers);
  const out = chunks.flatMap((c) => s.push(c));
  const tail = s.flush();
  return { out, tail };
}

describe('StreamSplitter', () => {
  test('finds a marker split across chunks and never releases half of it', () => {
    const { out } = run(['</think>'], ['abc</', 'thi', 'nk>def']);
    expect(out).toEqual([
      { type: 'text', text: 'abc' },
      { type: 'marker', marker: '</think>' },
      { type: 'text', text: 'def' },
    ]);
  });
  test('a held partial that turns out not to be a marker is released as text', () => {
    const { out, tail } = run(['STOP'], ['ab ST', 'ART x', ' ST']);
    expect(out.map((p) => (p.type === 'text' ? p.text : `[${p.marker}]`)).join('')).toBe('ab START x ');
    expect(tail).toBe('ST');
  });
  test('earliest marker wins; several per chunk', () => {
    const { out } = run(['<TOOLCALL>', 'END'], ['x END y <TOOLCALL> z']);
    expect(out.map((p) => (p.type === 'text' ? p.text : `[${p.marker}]`))).toEqual(['x ', '[END]', ' y ', '[<TOOLCALL>]', ' z']);
  });
});
