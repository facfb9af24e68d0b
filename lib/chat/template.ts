/**
 * Renders a model's own Jinja chat template with @huggingface/jinja, following
 * transformers' `apply_chat_template` (trim_blocks + lstrip_blocks, which the library
 * applies by default; `messages`/`tools`/`documents`/`add_generation_prompt` plus the
 * special-token variables in the context; `continue_final_message` done by cutting the
 * rendered text after the final message, not by a template variable). There is no
 * hand-written copy of the Nemotron template anywhere: a template fix upstream must
 * only need a new tokenizer_config.json / chat_template.jinja.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Template } from '@huggingface/jinja';
import { InvalidArgumentError, ModelLoadError } from '../errors';

/** One chat message as HF templates expect it (OpenAI-style fields; extra fields pass through). */
export interface ChatMessage {
  role: string;
  content?: string | null | readonly { type?: string; text?: string; [key: string]: unknown }[];
  tool_calls?: readonly unknown[];
  [key: string]: unknown;
}

export interface RenderChatOptions {
  messages: readonly ChatMessage[];
  /** Tool schemas (`{type: "function", function: {...}}` or bare function objects). */
  tools?: readonly unknown[] | null;
  documents?: readonly unknown[] | null;
  /** End with the assistant header (and `<think>\n\n` or `<think></think>` for Nemotron). */
  addGenerationPrompt?: boolean;
  /** End right after the final (assistant) message's text so the model continues it (thinking-budget step 2, spec §5.1). */
  continueFinalMessage?: boolean;
  /** Any other template variable: bos_token, eos_token, enable_thinking, ... */
  [variable: string]: unknown;
}

/** Python's str.isspace() set, so the continue-final-message cut strips exactly what transformers strips. */
const PY_SPACE = '\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const LEADING_SPACE = new RegExp(`^[${PY_SPACE}]+`);
const TRAILING_SPACE = new RegExp(`[${PY_SPACE}]+$`);
const pyLstrip = (s: string) => s.replace(LEADING_SPACE, '');
const pyStrip = (s: string) => pyLstrip(s).replace(TRAILING_SPACE, '');

/** A parsed chat template, reusable across renders. */
export class ChatTemplate {
  readonly source: string;
  private readonly compiled: Template;

  constructor(source: string) {
    if (typeof source !== 'string' || source === '') throw new InvalidArgumentError('chat template must be a non-empty string');
    this.source = source;
    try {
      this.compiled = new Template(source);
    } catch (e) {
      throw new ModelLoadError(`chat template does not parse: ${(e as Error).message}`, 'ERR_CHAT_TEMPLATE', { cause: e });
    }
  }

  render(options: RenderChatOptions): string {
    const { messages, tools, documents, addGenerationPrompt, continueFinalMessage, ...extra } = options;
    if (!Array.isArray(messages) || messages.length === 0)
      throw new InvalidArgumentError('renderChat: messages must be a non-empty array');
    if (continueFinalMessage && addGenerationPrompt)
      throw new InvalidArgumentError('renderChat: continueFinalMessage and addGenerationPrompt cannot both be set');

    const context: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(extra)) if (v !== undefined) context[k] = v;
    // HF always passes these four (None when absent), after the extra variables.
    Object.assign(context, {
      messages,
      tools: tools ?? null,
      documents: documents ?? null,
      add_generation_prompt: !!addGenerationPrompt,
    });

    let rendered: string;
    try {
      rendered = this.compiled.render(context);
    } catch (e) {
      throw new InvalidArgumentError(`chat template failed to render: ${(e as Error).message}`, { cause: e });
    }
    return continueFinalMessage ? cutAfterFinalMessage(rendered, messages[messages.length - 1]) : rendered;
  }
}

/**
 * transformers' continue_final_message: keep the text up to the LAST occurrence of the final
 * message's stripped content; keep its trailing whitespace only if the template kept it too.
 */
function cutAfterFinalMessage(rendered: string, last: ChatMessage): string {
  let final: unknown = last.content;
  if (Array.isArray(final)) {
    const block = [...final].reverse().find((b) => b && typeof b.text === 'string');
    if (!block) throw new InvalidArgumentError('continueFinalMessage: the final message has no text block to continue');
    final = block.text;
  }
  if (typeof final !== 'string') throw new InvalidArgumentError('continueFinalMessage: the final message has no text content');
  const stripped = pyStrip(final);
  const at = rendered.lastIndexOf(stripped);
  if (at < 0)
    throw new InvalidArgumentError(
      'continueFinalMessage: the final message does not appear in the rendered chat (the template changed its text)',
    );
  const lstripped = pyLstrip(final);
  if (rendered.slice(at, at + lstripped.length) === final) return rendered.slice(0, at + lstripped.length);
  return rendered.slice(0, at + stripped.length);
}

const cache = new Map<string, ChatTemplate>();
const CACHE_MAX = 8;

/** Renders `template` (source text or a ChatTemplate); parsed sources are cached. */
export function renderChat(template: string | ChatTemplate, options: RenderChatOptions): string {
  if (template instanceof ChatTemplate) return template.render(options);
  let compiled = cache.get(template);
  if (!compiled) {
    compiled = new ChatTemplate(template);
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string);
    cache.set(template, compiled);
  }
  return compiled.render(options);
}

/**
 * The model's chat template, chosen like transformers: a `chat_template.jinja` file in the
 * model directory takes priority; else tokenizer_config.json's `chat_template`, which is a
 * string or a list of `{name, template}` (the one named "default" is used).
 */
export async function readChatTemplate(dir: string, config: Record<string, unknown>): Promise<string | undefined> {
  try {
    return await fsp.readFile(path.join(dir, 'chat_template.jinja'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new ModelLoadError(`cannot read chat_template.jinja: ${(e as Error).message}`, 'ERR_TOKENIZER', { cause: e });
  }
  const value = config.chat_template;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value.find((t) => t && t.name === 'default' && typeof t.template === 'string');
    return named?.template;
  }
  return undefined;
}
