/**
 * Writes a small but real byte-level BPE tokenizer (Hugging Face tokenizer.json +
 * tokenizer_config.json) into a directory, so tokenizer, detokenizer and chat tests
 * run without the real 131k-token Nemotron tokenizer (which cannot be shipped or
 * downloaded here).
 *
 * Shape follows the Nemotron/Mistral-NeMo family: a Split regex pre-tokenizer
 * followed by ByteLevel (use_regex false), ByteLevel decoder, TemplateProcessing
 * post-processor that prepends <s>. The merges are learned here by a tiny BPE
 * trainer over SAMPLE_TEXT (filling the vocab up to MAX_TEST_VOCAB), so they are deterministic and the file is a genuine
 * BPE model that any HF-compatible tokenizer library can load.
 *
 * The control tokens are placed right after the 256 byte symbols in a shuffled
 * order (never at ids 0/1/2/10/11/12 as in the real model), so code that assumes
 * ids instead of reading them from the files fails the tests.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The special tokens written into added_tokens, in their canonical order. */
export const TEST_SPECIAL_TOKENS = [
  '<unk>',
  '<s>',
  '</s>',
  '<SPECIAL_10>',
  '<SPECIAL_11>',
  '<SPECIAL_12>',
  '<think>',
  '</think>',
  '<TOOLCALL>',
  '</TOOLCALL>',
  '<AVAILABLE_TOOLS>',
  '</AVAILABLE_TOOLS>',
  '<TOOL_RESPONSE>',
  '</TOOL_RESPONSE>',
] as const;

export const MAX_TEST_VOCAB = 1024;

/** A Tekken-style pre-tokenizer pattern (letters with their leading space, single digits, punctuation runs, newlines, spaces). */
export const TEST_SPLIT_PATTERN =
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|" +
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|" +
  "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** Training text: prose, chat-like answers, code, numbers, a little CJK/accents/emoji so some multi-byte merges exist. */
const SAMPLE_TEXT = `
The quick brown fox jumps over the lazy dog. The dog sleeps in the sun, and the fox runs into the forest.
What is the weather in Paris today? The weather in Paris is cloudy with a temperature of 18 degrees.
You are a helpful assistant. Answer the question of the user as well as you can, and think step by step.
Okay, the user asked what 2+2 is. Let me think. Well, 2 plus 2 equals 4. That is a basic question.
Hello! How can I help you today? I can answer questions, write code, and explain things.
Write a haiku about GPUs: silicon rivers, a thousand cores in chorus, the tensor rain falls.
The model reads the prompt, then it writes the answer token by token until the end of the turn.
function add(a, b) {
  return a + b;
}
const result = add(17, 23); // the result is 40
for (let i = 0; i < 10; i++) {
  console.log("value", i * 2);
}
def greet(name):
    return "Hello, " + name + "!"
{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}
{"temp": 18, "sky": "cloudy"}, {"temp": 25, "sky": "sunny"}
Thanks. And in Fahrenheit? It is 64 degrees Fahrenheit in Paris and 77 degrees in Tokyo.
Compare Paris and Tokyo. Paris is the capital of France; Tokyo is the capital of Japan.
Café, naïve, résumé, déjà vu, São Paulo, Zürich, Kraków, Ærø.
東京は日本の首都です。今日は天気がいいです。北京是中国的首都。你好，世界！
Emoji: 😀 🎉 👍 🚀 — smiles and rockets 😀😀 and a party 🎉.
The answer is 391, because 17 times 23 is 391. Let me check: 17 * 20 = 340 and 17 * 3 = 51.
Tool calls are written as a JSON list, and the tool responses come back as JSON.
In the beginning the tokenizer splits the text into words, then it merges the most frequent pairs.
Numbers like 3.14159, 2.71828, 1024, 65536 and 131072 appear in technical text.
The thinking budget limits how many tokens the model may spend on reasoning before it answers.
`;

/** GPT-2 byte→unicode table: printable bytes map to themselves, the rest to U+0100.. (same as HF ByteLevel). */
function byteSymbols(): string[] {
  const out: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    out[b] = String.fromCodePoint(printable ? b : next++);
  }
  return out;
}

/** Small seeded PRNG (mulberry32) so the shuffled special-token order is fixed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Learns up to `maxMerges` BPE merges over the pre-tokenized sample (classic algorithm:
 * repeatedly merge the most frequent adjacent pair; ties broken by the pair's text so
 * the result never depends on Map order). Merges that would recreate a special token's
 * text are refused, so the vocab never has a duplicate key.
 */
function trainMerges(text: string, symbols: string[], maxMerges: number, banned: Set<string>): [string, string][] {
  const enc = new TextEncoder();
  const counts = new Map<string, number>();
  for (const m of text.matchAll(new RegExp(TEST_SPLIT_PATTERN, 'gu'))) {
    const word = Array.from(enc.encode(m[0]), (b) => symbols[b]).join('\u0000');
    counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  const words = [...counts].map(([w, n]) => ({ parts: w.split('\u0000'), n }));
  const merges: [string, string][] = [];
  while (merges.length < maxMerges) {
    const pairCounts = new Map<string, number>();
    for (const { parts, n } of words)
      for (let i = 0; i + 1 < parts.length; i++) {
        const key = parts[i] + '\u0000' + parts[i + 1];
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + n);
      }
    let best: string | undefined;
    let bestN = 0;
    for (const [key, n] of pairCounts) {
      if (banned.has(key.replace('\u0000', ''))) continue;
      if (n > bestN || (n === bestN && best !== undefined && key < best)) {
        best = key;
        bestN = n;
      }
    }
    if (best === undefined) break;
    const [a, b] = best.split('\u0000');
    merges.push([a, b]);
    for (const w of words) {
      const out: string[] = [];
      for (let i = 0; i < w.parts.length; i++) {
        if (i + 1 < w.parts.length && w.parts[i] === a && w.parts[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(w.parts[i]);
      }
      w.parts = out;
    }
  }
  return merges;
}

export interface TestTokenizerInfo {
  dir: string;
  /** Total number of ids (model vocab incl. the special tokens); ≤ MAX_TEST_VOCAB. */
  vocabSize: number;
  /** The id each special token was given. */
  ids: Record<(typeof TEST_SPECIAL_TOKENS)[number], number>;
  /** Whether tokenizer_config.json carries the shared Nemotron chat template. */
  hasChatTemplate: boolean;
}

/** Path of the shared Nemotron-Nano-9B-v2 chat template, when ../shared is beside the repo. */
export function sharedModelDir(): string | undefined {
  const candidates = [
    process.env.NEMOTRON_SHARED_MODELS && path.join(process.env.NEMOTRON_SHARED_MODELS, 'nemotron-nano-9b-v2'),
    path.join(__dirname, '..', '..', '..', 'shared', 'models', 'nemotron-nano-9b-v2'),
  ];
  return candidates.find((c): c is string => !!c && fs.existsSync(path.join(c, 'chat_template.jinja')));
}

export interface WriteTestTokenizerOptions {
  /** Chat template for tokenizer_config.json; default: the shared Nemotron template (omitted if not found). */
  chatTemplate?: string | null;
}

/** Writes tokenizer.json and tokenizer_config.json into `dir` (created if needed). Deterministic. */
export function writeTestTokenizer(dir: string, options: WriteTestTokenizerOptions = {}): TestTokenizerInfo {
  const symbols = byteSymbols();
  const vocab: Record<string, number> = {};
  symbols.forEach((s, b) => (vocab[s] = b));

  // Fisher–Yates with a fixed seed: special tokens at 256.. in a scrambled order.
  const order = [...TEST_SPECIAL_TOKENS];
  const rand = prng(0x5eed);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const ids = {} as TestTokenizerInfo['ids'];
  order.forEach((tok, k) => {
    ids[tok] = 256 + k;
    vocab[tok] = 256 + k; // also in the model vocab, as HF files have them (else libraries renumber added tokens)
  });

  let nextId = 256 + order.length;
  const merges = trainMerges(SAMPLE_TEXT, symbols, MAX_TEST_VOCAB - nextId, new Set(order));
  for (const [a, b] of merges) if (!(a + b in vocab)) vocab[a + b] = nextId++;
  const vocabSize = nextId;

  const addedTokens = TEST_SPECIAL_TOKENS.map((content) => ({
    id: ids[content],
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  })).sort((x, y) => x.id - y.id);

  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: TEST_SPLIT_PATTERN }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [ids['<s>']], tokens: ['<s>'] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };

  let chatTemplate: string | undefined;
  if (options.chatTemplate !== undefined) chatTemplate = options.chatTemplate ?? undefined;
  else {
    const shared = sharedModelDir();
    if (shared) chatTemplate = fs.readFileSync(path.join(shared, 'chat_template.jinja'), 'utf8');
  }

  const config: Record<string, unknown> = {
    added_tokens_decoder: Object.fromEntries(
      addedTokens.map(({ id, ...rest }) => [String(id), rest]),
    ),
    bos_token: '<s>',
    eos_token: '<SPECIAL_12>',
    unk_token: '<unk>',
    clean_up_tokenization_spaces: false,
    model_max_length: 131072,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  if (chatTemplate !== undefined) config.chat_template = chatTemplate;

  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson, null, 2));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(config, null, 2));
  return { dir, vocabSize, ids, hasChatTemplate: chatTemplate !== undefined };
}
