/**
 * `nemotron chat --model DIR`: an interactive conversation in the terminal. The
 * answer streams as it is generated; the thought is shown dimmed (on a terminal)
 * and set apart from the answer. Slash commands change reasoning and budget
 * between turns; Ctrl-C stops an answer, or quits at the prompt.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';

import type { ChatReply, ChatSession } from '../../chat/session';
import type { ChatMessage } from '../../chat/template';
import { loadModel, type Model } from '../../model';
import type { LoadModelOptions } from '../../options';
import { parseOrExit } from '../args';
import { CHAT_HELP, parseChatCommand, parseLogitBias } from '../chat-commands';
import { LineReader } from '../line-reader';
import { ProgressBar } from '../progress';

const spec = {
  name: 'chat',
  summary: 'Interactive chat with a model directory (needs tokenizer.json and a chat template). /help inside lists the commands.',
  options: {
    model: { kind: 'string', value: 'DIR', help: 'the model directory (required)' },
    device: { kind: 'string', value: 'auto|cpu|cuda', help: 'where to run (default auto)' },
    threads: { kind: 'number', integer: true, min: 1, help: 'CPU threads (default: all cores)' },
    'kv-cache': { kind: 'string', value: 'auto|f32|bf16', help: 'KV cache type (default auto: bf16 on CUDA, f32 on the CPU)' },
    'context-size': { kind: 'number', integer: true, min: 16, help: 'most tokens the conversation may hold' },
    system: { kind: 'string', value: 'TEXT', help: 'system prompt' },
    'no-think': { kind: 'boolean', help: 'start with reasoning off (/think turns it on)' },
    budget: { kind: 'number', integer: true, min: 0, help: 'at most N thinking tokens per answer (0: no limit)' },
    'max-tokens': { kind: 'number', integer: true, min: 1, help: 'at most N generated tokens per answer' },
    temperature: { kind: 'number', min: 0, help: 'sampling temperature (default: the model card\'s)' },
    seed: { kind: 'number', integer: true, min: 0, help: 'sampling seed, for repeatable answers' },
    'logit-bias': { kind: 'string', value: 'ID=BIAS,...', help: 'add BIAS to token ID\'s logit ("-inf" bans it)' },
    session: {
      kind: 'string',
      value: 'FILE',
      help: 'resume the conversation saved in FILE (if it exists) and save it there on exit: history and state, so nothing is fed again',
    },
  },
} as const;

const DIM = '\x1b[2m';
const UNDIM = '\x1b[22m';

/** Writes one streamed reply: the thought (dimmed on a terminal, bracketed otherwise), then the answer. */
class ReplyPrinter {
  private inThought = false;
  private wroteAnything = false;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly tty: boolean,
  ) {}

  reasoning(text: string): void {
    if (!this.inThought) {
      this.inThought = true;
      this.out.write(this.tty ? DIM : '[thinking]\n');
    }
    this.write(text);
  }

  text(text: string): void {
    this.endThought();
    this.write(text);
  }

  /** Closes the reply with a statistics line (the "tokens/s" line scripts and tests wait for). */
  done(reply: ChatReply | undefined, note?: string): void {
    this.endThought();
    if (this.wroteAnything) this.out.write('\n');
    const parts: string[] = [];
    if (reply) {
      const u = reply.usage;
      parts.push(`${u.completionTokens} tokens`, `${reply.timings.tokensPerSecond.toFixed(1)} tokens/s`);
      if (u.reasoningTokens > 0) parts.push(`${u.reasoningTokens} thinking`);
      parts.push(`prompt ${u.promptTokens} (${u.cachedTokens} cached)`);
      if (reply.finishReason !== 'stop') parts.push(reply.finishReason === 'abort' ? 'stopped' : `finish: ${reply.finishReason}`);
    }
    if (note) parts.push(note);
    const line = `[${parts.join(', ')}]`;
    this.out.write(this.tty ? `${DIM}${line}${UNDIM}\n\n` : `${line}\n\n`);
  }

  private endThought(): void {
    if (!this.inThought) return;
    this.inThought = false;
    this.out.write(this.tty ? `${UNDIM}\n\n` : '\n[/thinking]\n\n');
  }

  private write(text: string): void {
    this.wroteAnything = true;
    this.out.write(text);
  }
}

async function loadWithProgress(
  dir: string,
  o: { device?: string; threads?: number; kvCache?: string; contextSize?: number },
): Promise<Model> {
  let bar: ProgressBar | undefined;
  // loadModel validates both (a bad value is an error naming the option).
  const device = (o.device ?? 'auto') as LoadModelOptions['device'];
  const kvCache = (o.kvCache ?? 'auto') as LoadModelOptions['kvCache'];
  const model = await loadModel(dir, {
    device,
    kvCache,
    threads: o.threads,
    contextSize: o.contextSize,
    onProgress: (p) => {
      if (p.stage !== 'weights' || p.totalBytes <= 0) return;
      bar ??= new ProgressBar({ label: 'loading weights', total: p.totalBytes, lineIntervalMs: 2000 });
      bar.update(p.loadedBytes);
    },
  });
  bar?.finish();
  return model;
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseOrExit(spec, argv);
  if (typeof parsed === 'number') return parsed;
  const o = parsed.options;
  if (!o.model) {
    console.error('nemotron chat: --model DIR is required (nemotron pull REPO downloads one)');
    return 2;
  }
  if (o.device !== undefined && !['auto', 'cpu', 'cuda'].includes(o.device)) {
    console.error(`nemotron chat: --device must be auto, cpu or cuda, got "${o.device}"`);
    return 2;
  }

  let logitBias: Record<string, number> | undefined;
  try {
    logitBias = o['logit-bias'] !== undefined ? parseLogitBias(o['logit-bias']) : undefined;
  } catch (err) {
    console.error(`nemotron chat: ${(err as Error).message}`);
    return 2;
  }

  let model: Model;
  let chat: ChatSession;
  let sessionReasoning: 'on' | 'off' = o['no-think'] ? 'off' : 'on';
  try {
    model = await loadWithProgress(path.resolve(o.model), {
      device: o.device,
      threads: o.threads,
      kvCache: o['kv-cache'],
      contextSize: o['context-size'],
    });
    if (o.session && fs.existsSync(o.session)) {
      // The file's system prompt, reasoning and context size are the conversation's own.
      chat = await model.loadChatSession(o.session, { checkpoints: 1 });
      const ignored = (['system', 'no-think', 'context-size'] as const).filter((k) => o[k] !== undefined);
      if (ignored.length) console.log(`(--${ignored.join(', --')}: the resumed session keeps its own)`);
      sessionReasoning = chat.save().options.reasoning ?? 'on';
      console.log(`resumed ${chat.history.length} messages from ${path.resolve(o.session)}`);
    } else {
      chat = model.createChatSession({
        systemPrompt: o.system,
        reasoning: sessionReasoning,
        contextSize: o['context-size'],
        checkpoints: 1, // /undo and /retry of the last message swap a copy of the state back in, without a prefill
      });
    }
  } catch (err) {
    console.error(`nemotron chat: ${(err as Error).message}`);
    return 1;
  }

  const out = process.stdout;
  const tty = Boolean(out.isTTY);
  const info = model.info;
  console.log(`${path.basename(model.dir)} on ${model.device} (${info.threads} threads), context ${chat.contextSize}. /help for commands.`);

  let reasoning: 'on' | 'off' = sessionReasoning;
  let budget = o.budget && o.budget > 0 ? o.budget : undefined;
  let generation: AbortController | undefined;

  const rl = readline.createInterface({ input: process.stdin, output: out, terminal: Boolean(process.stdin.isTTY) });
  const lines = new LineReader(rl);
  // Ctrl-C: stop the answer being generated, or leave when at the prompt. readline
  // reports it on a terminal; with piped input it arrives as a process signal.
  const onInterrupt = () => {
    if (generation) generation.abort();
    else rl.close();
  };
  rl.on('SIGINT', onInterrupt);
  process.on('SIGINT', onInterrupt);

  /** Sends one message and prints the answer as it streams. */
  const answer = async (input: string | ChatMessage[]) => {
    const printer = new ReplyPrinter(out, tty);
    generation = new AbortController();
    try {
      const reply = await chat.send(input, {
        signal: generation.signal,
        // Per turn only when it differs from the session's: the system prompt already says it.
        reasoning: reasoning === sessionReasoning ? undefined : reasoning,
        thinking: reasoning === 'on' && budget ? { maxTokens: budget } : undefined,
        maxTokens: o['max-tokens'],
        temperature: o.temperature,
        seed: o.seed,
        logitBias,
        onReasoning: (t) => printer.reasoning(t),
        onText: (t) => printer.text(t),
      });
      printer.done(reply);
    } catch (err) {
      printer.done(undefined, `error: ${(err as Error).message}`);
    } finally {
      generation = undefined;
    }
  };

  try {
    for (;;) {
      const line = await lines.next(reasoning === 'on' ? '> ' : '(no think) > ');
      if (line === undefined) break;
      if (line.trim() === '') continue;
      const cmd = parseChatCommand(line);
      if (cmd) {
        if (cmd.kind === 'exit') break;
        if (cmd.kind === 'help') console.log(CHAT_HELP);
        else if (cmd.kind === 'invalid') console.log(cmd.message);
        else if (cmd.kind === 'think' || cmd.kind === 'no_think') {
          reasoning = cmd.kind === 'think' ? 'on' : 'off';
          console.log(`reasoning ${reasoning}`);
        } else if (cmd.kind === 'budget') {
          budget = cmd.tokens > 0 ? cmd.tokens : undefined;
          console.log(budget ? `thinking budget: ${budget} tokens` : 'thinking budget: none');
        } else if (cmd.kind === 'undo' || cmd.kind === 'retry') {
          let input: ChatMessage[];
          try {
            input = await chat.rewind();
          } catch (err) {
            console.log(`nothing to ${cmd.kind === 'undo' ? 'undo' : 'retry'}: ${(err as Error).message}`);
            continue;
          }
          const text = input.map((m) => (typeof m.content === 'string' ? m.content : '')).join('\n');
          if (cmd.kind === 'undo') console.log(`took back: ${text.length > 60 ? `${text.slice(0, 57)}...` : text}`);
          else await answer(input);
        } else if (cmd.kind === 'reset') {
          await chat.reset();
          console.log('conversation cleared');
        } else if (cmd.kind === 'save') {
          try {
            fs.writeFileSync(cmd.file, JSON.stringify(chat.save(), null, 2));
            console.log(`saved to ${path.resolve(cmd.file)}`);
          } catch (err) {
            console.log(`cannot save: ${(err as Error).message}`);
          }
        }
        continue;
      }

      await answer(line);
    }
  } finally {
    process.off('SIGINT', onInterrupt);
    rl.close();
    if (o.session) {
      try {
        await chat.saveToFile(o.session);
        console.log(`session saved to ${path.resolve(o.session)}`);
      } catch (err) {
        console.error(`nemotron chat: cannot save the session: ${(err as Error).message}`);
      }
    }
    chat.dispose();
    model.dispose();
  }
  return 0;
}
