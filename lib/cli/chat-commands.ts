/** The slash commands of `nemotron chat`, parsed apart from the terminal code so they can be tested alone. */
export type ChatCommand =
  | { kind: 'think' }
  | { kind: 'no_think' }
  | { kind: 'budget'; tokens: number }
  | { kind: 'reset' }
  | { kind: 'undo' }
  | { kind: 'retry' }
  | { kind: 'save'; file: string }
  | { kind: 'help' }
  | { kind: 'exit' }
  | { kind: 'invalid'; message: string };

export const CHAT_HELP = [
  '/think          reasoning on (the model thinks before answering)',
  '/no_think       reasoning off',
  '/budget N       at most N thinking tokens per answer (0: no limit)',
  '/reset          forget the conversation',
  '/undo           take back your last message and its answer',
  '/retry          answer your last message again (a new draw when sampling)',
  '/save FILE      write the conversation as JSON (model.restoreChatSession() reads it)',
  '/exit           quit (also Ctrl-D, or Ctrl-C at the prompt)',
  'Ctrl-C while the model answers stops the answer.',
].join('\n');

/** The command a line holds, or undefined when it is a message for the model. */
export function parseChatCommand(line: string): ChatCommand | undefined {
  const trimmed = line.trim();
  if (!trimmed.startsWith('/')) return undefined;
  const [name, ...rest] = trimmed.slice(1).split(/\s+/);
  const arg = rest.join(' ');
  switch (name) {
    case 'think':
      return { kind: 'think' };
    case 'no_think':
      return { kind: 'no_think' };
    case 'budget': {
      const n = Number(arg);
      if (arg === '' || !Number.isInteger(n) || n < 0) return { kind: 'invalid', message: 'usage: /budget N (a whole number of tokens; 0 removes the limit)' };
      return { kind: 'budget', tokens: n };
    }
    case 'reset':
      return { kind: 'reset' };
    case 'undo':
      return { kind: 'undo' };
    case 'retry':
      return { kind: 'retry' };
    case 'save':
      return arg ? { kind: 'save', file: arg } : { kind: 'invalid', message: 'usage: /save FILE' };
    case 'help':
    case '?':
      return { kind: 'help' };
    case 'exit':
    case 'quit':
      return { kind: 'exit' };
    default:
      return { kind: 'invalid', message: `unknown command /${name} (/help lists them)` };
  }
}

/**
 * `--logit-bias` as llama.cpp and the OpenAI API know it: "ID=BIAS" pairs, comma
 * separated; BIAS "-inf" bans the token. Returns the session's logitBias option.
 */
export function parseLogitBias(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const pair of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^(\d+)=(-?inf|[-+]?\d+(?:\.\d+)?)$/i.exec(pair);
    if (!m) throw new Error(`--logit-bias: expected ID=BIAS (e.g. 42=-inf,7=2.5), got "${pair}"`);
    out[m[1]] = /inf/i.test(m[2]) ? (m[2].startsWith('-') ? -Infinity : Infinity) : Number(m[2]);
  }
  return out;
}
