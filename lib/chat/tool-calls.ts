/**
 * Parsing the model's tool-call syntax (spec §6):
 *   <TOOLCALL>[{"name": "f", "arguments": {...}}, ...]</TOOLCALL>
 * Follows NVIDIA's reference parser for this model: the first TOOLCALL block is
 * read as a JSON list (brackets added if missing); the visible content is the
 * text before it. Unlike the reference, nothing is silently dropped: malformed
 * items and unparsable blocks are returned in `invalid` with the reason.
 */
export interface ParsedToolCall {
  id: string;
  name: string;
  /** The arguments as the model wrote them (usually an object). */
  arguments: unknown;
}

export interface InvalidToolCall {
  raw: string;
  error: string;
}

export interface ToolCallParse {
  content: string;
  toolCalls: ParsedToolCall[];
  invalid: InvalidToolCall[];
}

const OPEN = '<TOOLCALL>';
const CLOSE = '</TOOLCALL>';

let counter = 0;
export function newToolCallId(): string {
  counter = (counter + 1) % 1e9;
  return `call_${Date.now().toString(36)}${counter.toString(36)}`;
}

export function parseToolCalls(text: string, makeId: () => string = newToolCallId): ToolCallParse {
  const start = text.indexOf(OPEN);
  if (start < 0) return { content: text, toolCalls: [], invalid: [] };
  const end = text.indexOf(CLOSE, start + OPEN.length);
  const body = (end < 0 ? text.slice(start + OPEN.length) : text.slice(start + OPEN.length, end)).trim();
  const content = text.slice(0, start).trim();
  if (end < 0) return { content, toolCalls: [], invalid: [{ raw: body, error: `unterminated ${OPEN} block` }] };

  let list: unknown;
  try {
    list = JSON.parse(body.startsWith('[') ? body : `[${body}]`);
  } catch (err) {
    return { content, toolCalls: [], invalid: [{ raw: body, error: `invalid JSON: ${(err as Error).message}` }] };
  }
  const items = Array.isArray(list) ? list : [list];
  const toolCalls: ParsedToolCall[] = [];
  const invalid: InvalidToolCall[] = [];
  for (const item of items) {
    const raw = JSON.stringify(item);
    if (!item || typeof item !== 'object' || Array.isArray(item)) {
      invalid.push({ raw, error: 'a tool call must be an object with "name" and "arguments"' });
      continue;
    }
    const { name, arguments: args } = item as { name?: unknown; arguments?: unknown };
    if (typeof name !== 'string' || name.length === 0) {
      invalid.push({ raw, error: 'missing "name"' });
      continue;
    }
    let parsedArgs: unknown = args ?? {};
    // Some models emit the arguments as a JSON string; accept both forms.
    if (typeof parsedArgs === 'string') {
      try {
        parsedArgs = JSON.parse(parsedArgs);
      } catch {
        // keep the string: the schema check decides whether that is acceptable
      }
    }
    toolCalls.push({ id: makeId(), name, arguments: parsedArgs });
  }
  return { content, toolCalls, invalid };
}
