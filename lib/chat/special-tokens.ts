/**
 * The control tokens of the Nemotron-H chat format (spec §4.1, §6) and how their ids
 * are found. Only the TEXT of each token is fixed here: the ids are always looked up in
 * the model's tokenizer files, because the real ids are unverified (spec §4.1) and a
 * model may place them anywhere.
 */

/** Text of each control token, keyed by the field name used in `SpecialTokenIds`. */
export const CONTROL_TOKEN_TEXT = {
  /** `<SPECIAL_10>`: opens the system block. */
  systemStart: '<SPECIAL_10>',
  /** `<SPECIAL_11>`: opens a user/assistant turn header. */
  turnStart: '<SPECIAL_11>',
  /** `<SPECIAL_12>`: ends an assistant turn (the tokenizer's EOS). */
  endOfTurn: '<SPECIAL_12>',
  think: '<think>',
  thinkEnd: '</think>',
  toolCall: '<TOOLCALL>',
  toolCallEnd: '</TOOLCALL>',
  availableTools: '<AVAILABLE_TOOLS>',
  availableToolsEnd: '</AVAILABLE_TOOLS>',
  toolResponse: '<TOOL_RESPONSE>',
  toolResponseEnd: '</TOOL_RESPONSE>',
} as const;

export type ControlTokenName = keyof typeof CONTROL_TOKEN_TEXT;

/** Ids read from the tokenizer files; `undefined` when the model has no such single token. */
export type SpecialTokenIds = { [K in ControlTokenName]: number | undefined } & {
  bos: number | undefined;
  eos: number | undefined;
};

/**
 * tokenizer_config.json writes a token either as a string or as a serialized AddedToken
 * (`{"__type": "AddedToken", "content": "<s>", ...}`); both forms occur in HF repos.
 */
export function tokenText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string')
    return (value as { content: string }).content;
  return undefined;
}

/** Resolves every control token plus bos/eos (named by tokenizer_config) to ids via `lookup`. */
export function resolveSpecialTokens(
  lookup: (text: string) => number | undefined,
  config: Record<string, unknown>,
): SpecialTokenIds {
  const out = {} as SpecialTokenIds;
  for (const [name, text] of Object.entries(CONTROL_TOKEN_TEXT)) out[name as ControlTokenName] = lookup(text);
  const bos = tokenText(config.bos_token);
  const eos = tokenText(config.eos_token);
  out.bos = bos === undefined ? undefined : lookup(bos);
  out.eos = eos === undefined ? undefined : lookup(eos);
  return out;
}
