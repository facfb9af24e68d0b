/**
 * `nemotron chat` in a real pseudo-terminal (tmux): a question streams an answer
 * and a tokens/s line, slash commands answer, Ctrl-C at the prompt leaves. The
 * tiny model has random weights, so the answer's text is arbitrary: --max-tokens
 * bounds it and the test looks only at the structure of the screen.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { parseChatCommand, parseLogitBias } from '../lib/cli/chat-commands';
import { makeChatModelDir, type ChatModelDir } from './helpers/chat-model';
import { BIN, ensureCliBuilt, ROOT } from './helpers/cli-run';
import { TmuxSession, tmuxAvailable } from './helpers/cli-tmux';

describe('chat slash commands', () => {
  test('parse', () => {
    expect(parseChatCommand('hello')).toBeUndefined();
    expect(parseChatCommand('/think')).toEqual({ kind: 'think' });
    expect(parseChatCommand(' /no_think ')).toEqual({ kind: 'no_think' });
    expect(parseChatCommand('/budget 128')).toEqual({ kind: 'budget', tokens: 128 });
    expect(parseChatCommand('/budget 0')).toEqual({ kind: 'budget', tokens: 0 });
    expect(parseChatCommand('/budget -1')?.kind).toBe('invalid');
    expect(parseChatCommand('/budget')?.kind).toBe('invalid');
    expect(parseChatCommand('/save out dir/chat.json')).toEqual({ kind: 'save', file: 'out dir/chat.json' });
    expect(parseChatCommand('/save')?.kind).toBe('invalid');
    expect(parseChatCommand('/reset')).toEqual({ kind: 'reset' });
    expect(parseChatCommand('/undo')).toEqual({ kind: 'undo' });
    expect(parseChatCommand('/retry')).toEqual({ kind: 'retry' });
    expect(parseChatCommand('/exit')).toEqual({ kind: 'exit' });
    expect(parseLogitBias('42=-inf, 7=2.5,3=-1')).toEqual({ 42: -Infinity, 7: 2.5, 3: -1 });
    expect(() => parseLogitBias('x=1')).toThrow(/ID=BIAS/);
    expect(parseChatCommand('/frobnicate')).toEqual({ kind: 'invalid', message: expect.stringContaining('/help') });
  });
});

const haveTmux = tmuxAvailable();
if (!haveTmux) console.log('skipping "chat in a terminal": tmux is not installed (apt-get install -y tmux)');
const describeTmux = haveTmux ? describe : describe.skip;

describeTmux('chat in a terminal', () => {
  let model: ChatModelDir;
  let term: TmuxSession | undefined;

  beforeAll(() => {
    ensureCliBuilt();
    model = makeChatModelDir();
  });
  afterEach(() => term?.kill());
  afterAll(() => model?.cleanup());

  const start = (extra: string[]) => {
    const cmd = [process.execPath, BIN, 'chat', '--model', model.dir, '--threads', '1', '--max-tokens', '12', ...extra]
      .map((a) => `'${a}'`)
      .join(' ');
    term = new TmuxSession(cmd, { cwd: ROOT });
    return term;
  };
  const countStats = (s: string) => (s.match(/tokens\/s/g) ?? []).length;

  test('a question streams an answer with tokens/s; slash commands work; /exit leaves with 0', async () => {
    const t = start(['--no-think', '--seed', '1']);
    await t.waitFor((s) => s.includes('(no think) >'), 60_000, 'the prompt');
    t.type('Hello, who are you?');
    const first = await t.waitFor((s) => countStats(s) >= 1, 60_000, 'a tokens/s line');
    expect(first).toMatch(/\[12 tokens, [\d.]+ tokens\/s, prompt \d+ \(0 cached\), finish: length\]/);

    t.type('/budget 5');
    await t.waitFor((s) => s.includes('thinking budget: 5 tokens'), 10_000, '/budget');
    t.type('/think');
    await t.waitFor((s) => s.includes('reasoning on'), 10_000, '/think');
    t.type('And now?');
    const second = await t.waitFor((s) => countStats(s) >= 2, 60_000, 'a second answer');
    expect(second).toMatch(/cached\)/);
    expect(t.screen({ escapes: true })).toContain('\x1b[2m'); // the thought is dimmed on a terminal

    const saved = path.join(model.dir, 'saved-chat.json');
    t.type(`/save ${saved}`);
    await t.waitFor((s) => s.includes('saved to'), 10_000, '/save');
    const snapshot = JSON.parse(fs.readFileSync(saved, 'utf8'));
    expect(snapshot.format).toBe('nemotron-node.chat/1');
    expect(snapshot.history.filter((m: { role: string }) => m.role === 'user')).toHaveLength(2);

    t.type('/reset');
    await t.waitFor((s) => s.includes('conversation cleared'), 10_000, '/reset');
    t.type('/exit');
    await t.waitFor(() => t.exitStatus() !== undefined, 20_000, 'the program to exit');
    expect(t.exitStatus()).toBe(0);
  });

  test('--session FILE: saved on exit, resumed by the next run without feeding the conversation again', async () => {
    const file = path.join(model.dir, 'session.state');
    const t = start(['--no-think', '--seed', '1', '--session', file]);
    await t.waitFor((s) => s.includes('(no think) >'), 60_000, 'the prompt');
    t.type('Hello, who are you?');
    await t.waitFor((s) => countStats(s) >= 1, 60_000, 'a tokens/s line');
    t.type('/exit');
    await t.waitFor(() => t.exitStatus() !== undefined, 30_000, 'the program to exit');
    expect(t.screen()).toContain('session saved to');
    expect(t.exitStatus()).toBe(0);
    t.kill();

    const again = start(['--session', file]); // reasoning off comes from the file
    await again.waitFor((s) => s.includes('(no think) >'), 60_000, 'the resumed prompt');
    expect(again.screen()).toMatch(/resumed 2 messages from/);
    again.type('And now?');
    const s = await again.waitFor((x) => countStats(x) >= 1, 60_000, 'a reply in the resumed session');
    // The first turn of the new process already has the whole earlier conversation in its state.
    const m = /prompt (\d+) \((\d+) cached\)/.exec(s);
    expect(m).not.toBeNull();
    expect(Number(m![2])).toBeGreaterThan(10);
    again.type('/exit');
    await again.waitFor(() => again.exitStatus() !== undefined, 30_000, 'the program to exit');
    expect(again.exitStatus()).toBe(0);
  });

  test('/retry answers the last message again from the state before it; /undo takes messages back', async () => {
    const t = start(['--no-think']); // greedy: a retry gives the same answer
    await t.waitFor((s) => s.includes('(no think) >'), 60_000, 'the prompt');
    t.type('Hello there');
    await t.waitFor((s) => countStats(s) >= 1, 60_000, 'the first answer');
    t.type('Second message');
    await t.waitFor((s) => countStats(s) >= 2, 60_000, 'the second answer');
    t.type('/retry');
    const screen = await t.waitFor((s) => countStats(s) >= 3, 60_000, 'the retried answer');
    const stats = [...screen.matchAll(/\[12 tokens, [\d.]+ tokens\/s, (prompt \d+ \(\d+ cached\)), finish: length\]/g)].map((m) => m[1]);
    expect(stats).toHaveLength(3);
    expect(stats[2]).toBe(stats[1]); // the same prompt, and the same conversation state reused
    expect(stats[2]).not.toMatch(/\(0 cached\)/);
    t.type('/undo');
    await t.waitFor((s) => s.includes('took back: Second message'), 10_000, '/undo');
    t.type('/undo');
    await t.waitFor((s) => s.includes('took back: Hello there'), 10_000, 'a second /undo');
    t.type('/undo');
    await t.waitFor((s) => s.includes('nothing to undo'), 10_000, '/undo with nothing left');
    t.type('/exit');
    await t.waitFor(() => t.exitStatus() !== undefined, 20_000, 'the program to exit');
    expect(t.exitStatus()).toBe(0);
  });

  test('Ctrl-C during an answer stops it; the chat goes on', async () => {
    // Random weights end answers after a few hundred tokens: ban every special token
    // (end of turn included) so the answer runs until it is interrupted.
    const ban = Object.values(model.tokenizer.ids).map((id) => `${id}=-inf`).join(',');
    const t = start(['--no-think', '--logit-bias', ban, '--max-tokens', '200000', '--context-size', '250000']);
    await t.waitFor((s) => s.includes('(no think) >'), 60_000, 'the prompt');
    t.type('Tell me a very long story.');
    await t.waitFor((s) => s.split('\n').filter((l) => l.trim()).length >= 4, 30_000, 'the answer to start');
    t.key('C-c');
    const s = await t.waitFor((x) => countStats(x) >= 1, 30_000, 'the stats line');
    expect(s).toMatch(/tokens\/s, .*stopped\]/);
    await t.waitFor((x) => /\(no think\) > *$/.test(x.trimEnd()), 10_000, 'the prompt again');
    t.type('/exit');
    await t.waitFor(() => t.exitStatus() !== undefined, 20_000, 'the program to exit');
    expect(t.exitStatus()).toBe(0);
  });

  test('Ctrl-C at the prompt exits', async () => {
    const t = start([]);
    await t.waitFor((s) => /\n> $|\n> \n/.test(s + '\n') || s.includes('> '), 60_000, 'the prompt');
    t.key('C-c');
    await t.waitFor(() => t.exitStatus() !== undefined, 20_000, 'the program to exit');
    expect(t.exitStatus()).toBe(0);
  });
});
