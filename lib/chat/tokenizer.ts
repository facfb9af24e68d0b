/**
 * Text ⇄ token ids for a model directory, backed by @huggingface/tokenizers (pure JS,
 * reads the HF `tokenizer.json` format). Chosen over the Rust-backed `tokenizers` npm
 * package because both gave identical ids and exact round trips on our test tokenizer at
 * about the same speed, while this one is synchronous, ~0.6 MB and needs no second native
 * binary (README "Tokenizer" section has the numbers).
 *
 * Everything model-specific (special-token ids, bos/eos, the chat template) is read from
 * the files at load time: the real Nemotron ids are unverified (spec §4.1).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { InvalidArgumentError, ModelLoadError } from '../errors';
import { parseHfJson } from '../hf-json';
import { resolveSpecialTokens, SpecialTokenIds, tokenText } from './special-tokens';
import { readChatTemplate } from './template';

export interface EncodeOptions {
  /** Apply the tokenizer's post-processor (prepends `<s>` for Nemotron). Default false: chat prompts have no BOS (spec §4.1). */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (added tokens marked `special`, plus tokenizer_config additional_special_tokens). */
  skipSpecialTokens?: boolean;
}

interface AddedTokenInfo {
  content: string;
  special: boolean;
}

/** GPT-2 byte-level alphabet, reversed: the character a byte-level vocab uses for each byte → that byte. */
const CHAR_TO_BYTE: ReadonlyMap<number, number> = (() => {
  const map = new Map<number, number>();
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    map.set(printable ? b : next++, b);
  }
  return map;
})();

const utf8 = new TextEncoder();

function loadError(message: string, cause?: unknown): ModelLoadError {
  return new ModelLoadError(message, 'ERR_TOKENIZER', cause === undefined ? undefined : { cause });
}

async function readJson(file: string, required: boolean): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    if (!required && (e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw loadError(`cannot read ${file}: ${(e as Error).message}`, e);
  }
  let value: unknown;
  try {
    value = parseHfJson(text);
  } catch (e) {
    throw loadError(`${file} is not valid JSON: ${(e as Error).message}`, e);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw loadError(`${file} must contain a JSON object`);
  return value as Record<string, unknown>;
}

/** True when the decoder only undoes the GPT-2 byte→char mapping, so every vocab token is a byte string. */
function isByteLevelDecoder(decoder: unknown): boolean {
  const d = decoder as { type?: string; decoders?: unknown[] } | null | undefined;
  if (!d) return false;
  if (d.type === 'ByteLevel') return true;
  return d.type === 'Sequence' && Array.isArray(d.decoders) && d.decoders.length > 0 && d.decoders.every(isByteLevelDecoder);
}

export class Tokenizer {
  /** Number of ids (largest id + 1, over the model vocab and added tokens). */
  readonly vocabSize: number;
  /** Control-token ids read from the files; `undefined` where the model has no such single token. */
  readonly special: Readonly<SpecialTokenIds>;
  /** Ids that end an assistant turn: `<SPECIAL_12>` plus tokenizer_config's eos_token when different. */
  readonly eosTokenIds: ReadonlySet<number>;
  /** The model's chat template: `chat_template.jinja` if present, else tokenizer_config's (the "default" one if named). */
  readonly chatTemplate: string | undefined;
  /** Variables HF passes to every chat template render (bos_token, eos_token, unk_token, pad_token, ...). */
  readonly templateVariables: Readonly<Record<string, unknown>>;
  /** Whether vocab tokens are GPT-2 byte-level strings (required by IncrementalDetokenizer). */
  readonly isByteLevel: boolean;
  /** The parsed tokenizer_config.json ({} when absent). */
  readonly config: Readonly<Record<string, unknown>>;

  private readonly hf: HfTokenizer;
  private readonly added: ReadonlyMap<number, AddedTokenInfo>;
  private readonly specialIds: ReadonlySet<number>;
  private readonly bytesCache: (Uint8Array | undefined)[] = [];

  private constructor(json: Record<string, unknown>, config: Record<string, unknown>, chatTemplate: string | undefined) {
    // The library defaults clean_up_tokenization_spaces to true, which rewrites " ." → "." and
    // " n't" → "n't": decode would then not invert encode, and streamed deltas would not add up
    // to decode(). Generation needs the exact text, so it is always off.
    const libConfig = { ...config, clean_up_tokenization_spaces: false };
    try {
      this.hf = new HfTokenizer(json, libConfig);
    } catch (e) {
      throw loadError(`tokenizer.json could not be loaded: ${(e as Error).message}`, e);
    }
    this.config = config;
    this.chatTemplate = chatTemplate;
    this.isByteLevel = isByteLevelDecoder(json.decoder);

    const added = new Map<number, AddedTokenInfo>();
    for (const t of (json.added_tokens as { id: number; content: string; special?: boolean }[] | undefined) ?? [])
      added.set(t.id, { content: t.content, special: !!t.special });
    this.added = added;

    const specialIds = new Set<number>();
    for (const [id, t] of added) if (t.special) specialIds.add(id);
    for (const extra of (config.additional_special_tokens as unknown[] | undefined) ?? []) {
      const text = tokenText(extra);
      const id = text === undefined ? undefined : this.tokenToId(text);
      if (id !== undefined) specialIds.add(id);
    }
    this.specialIds = specialIds;

    let maxId = -1;
    const vocab = (json.model as { vocab?: unknown }).vocab;
    if (Array.isArray(vocab)) maxId = vocab.length - 1;
    else if (vocab && typeof vocab === 'object')
      for (const id of Object.values(vocab as Record<string, number>)) if (id > maxId) maxId = id;
    for (const id of added.keys()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;

    this.special = Object.freeze(resolveSpecialTokens((t) => this.tokenToId(t), config));
    const eos = new Set<number>();
    if (this.special.endOfTurn !== undefined) eos.add(this.special.endOfTurn);
    if (this.special.eos !== undefined) eos.add(this.special.eos);
    this.eosTokenIds = eos;

    const vars: Record<string, unknown> = {};
    for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'sep_token', 'cls_token', 'mask_token']) {
      const text = tokenText(config[key]);
      if (text !== undefined) vars[key] = text;
    }
    if (Array.isArray(config.additional_special_tokens))
      vars.additional_special_tokens = config.additional_special_tokens.map(tokenText).filter((t) => t !== undefined);
    this.templateVariables = Object.freeze(vars);
  }

  /** Loads `tokenizer.json` (required), `tokenizer_config.json` and `chat_template.jinja` (optional) from a model directory. */
  static async fromDir(dir: string): Promise<Tokenizer> {
    if (typeof dir !== 'string' || dir === '') throw new InvalidArgumentError('Tokenizer.fromDir: dir must be a non-empty string');
    const json = await readJson(path.join(dir, 'tokenizer.json'), true);
    if (!json || !json.model || typeof json.model !== 'object')
      throw loadError(`${path.join(dir, 'tokenizer.json')} has no "model" object: not a Hugging Face tokenizer.json`);
    const config = (await readJson(path.join(dir, 'tokenizer_config.json'), false)) ?? {};
    const chatTemplate = await readChatTemplate(dir, config);
    return new Tokenizer(json, config, chatTemplate);
  }

  /** Text → ids. Special-token text such as `<SPECIAL_11>` in `text` becomes its single id (HF behaviour). */
  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new InvalidArgumentError('encode: text must be a string');
    return this.hf.encode(text, { add_special_tokens: options.addSpecialTokens ?? false }).ids;
  }

  /** Ids → text, exactly inverting encode for byte-level tokenizers. */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const list = this.checkIds(ids, 'decode');
    if (list.length === 0) return ''; // the library rejects empty input
    return this.hf.decode(list, { skip_special_tokens: options.skipSpecialTokens ?? false, clean_up_tokenization_spaces: false });
  }

  /** The id of a token string (vocab entry or added token), if it exists as one token. */
  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token) ?? undefined;
  }

  /** The token string of an id (byte-level form for vocab tokens, e.g. "Ġhello"). */
  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id) ?? undefined;
  }

  /** Whether `id` is an added token (special or not): decoders emit its text verbatim. */
  isAddedToken(id: number): boolean {
    return this.added.has(id);
  }

  /** Whether `id` is dropped by `skipSpecialTokens`. */
  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** Text of an added token (e.g. "<think>"), else undefined. */
  addedTokenText(id: number): string | undefined {
    return this.added.get(id)?.content;
  }

  /**
   * The raw bytes a vocab token stands for (byte-level tokenizers only); added tokens give
   * their text as UTF-8. Cached, so streaming costs O(token length) per token.
   */
  tokenBytes(id: number): Uint8Array {
    const hit = this.bytesCache[id];
    if (hit) return hit;
    if (!this.isByteLevel) throw loadError('tokenBytes needs a byte-level BPE tokenizer (decoder type ByteLevel)');
    const added = this.added.get(id);
    const token = added ? added.content : this.idToToken(id);
    let bytes: Uint8Array;
    if (token === undefined) bytes = new Uint8Array(0);
    else if (added) bytes = utf8.encode(token);
    else {
      const out: number[] = [];
      for (const ch of token) {
        const b = CHAR_TO_BYTE.get(ch.codePointAt(0)!);
        if (b === undefined) {
          // not a byte-level symbol: the token stands for its own UTF-8 text (HF Rust decoder rule)
          out.length = 0;
          out.push(...utf8.encode(token));
          break;
        }
        out.push(b);
      }
      bytes = Uint8Array.from(out);
    }
    this.bytesCache[id] = bytes;
    return bytes;
  }

  /** Validates ids (integers in [0, vocabSize)) and returns them as a plain array. */
  checkIds(ids: ArrayLike<number>, what: string): number[] {
    if (ids == null || typeof ids !== 'object' || typeof ids.length !== 'number')
      throw new InvalidArgumentError(`${what}: ids must be an array of token ids`);
    const out = new Array<number>(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize)
        throw new InvalidArgumentError(`${what}: ids[${i}] = ${String(id)} is not a token id (integers 0..${this.vocabSize - 1})`);
      out[i] = id;
    }
    return out;
  }
}
