/**
 * Tool calls as they are generated: scans the text inside <TOOLCALL>...</TOOLCALL>
 * (a JSON list of {"name": ..., "arguments": ...}) as it arrives and reports each
 * call's name once it is complete, then its arguments' JSON text piece by piece,
 * the way OpenAI streams tool_calls deltas. Calls are numbered in the order their
 * names complete (items without a name are not calls, as for the final parse).
 * Arguments written as a JSON string (some models do) are not streamed: the
 * parsed call that follows the block carries them.
 */

export interface ToolCallDelta {
  /** The call's number in this block (0, 1, ...), as the parsed calls are numbered. */
  index: number;
  /** Set once, on the call's first delta. */
  name?: string;
  /** More of the arguments' JSON text. */
  arguments?: string;
}

export class ToolCallStreamer {
  private depth = 0;
  private inString = false;
  private escape = false;
  private expectKey = false; // at depth 2: the next string is a key
  private key = ''; // the last key read at depth 2
  private keyText: string | null = null; // a key being read
  private nameText: string | null = null; // the "name" value being read
  private name: string | undefined; // this item's name, once complete
  private args: 'none' | 'streaming' | 'string' = 'none'; // this item's "arguments" value
  private pendingArgs = ''; // arguments text seen before the name completed
  private calls = 0; // calls numbered so far
  private index = -1; // this item's call number, once named

  /** Feeds more block text; returns the deltas it completes. */
  push(text: string): ToolCallDelta[] {
    const out: ToolCallDelta[] = [];
    let argStart = -1; // where this push's arguments text begins, while inside the value
    const flushArgs = (end: number) => {
      if (argStart < 0) return;
      const piece = text.slice(argStart, end);
      argStart = -1;
      if (!piece) return;
      if (this.index >= 0) out.push({ index: this.index, arguments: piece });
      else this.pendingArgs += piece;
    };
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (this.args === 'streaming' && argStart < 0) argStart = i;
      if (this.inString) {
        if (this.escape) this.escape = false;
        else if (c === '\\') this.escape = true;
        else if (c === '"') this.inString = false;
        if (this.keyText !== null) {
          if (this.inString) this.keyText += c;
          else this.endKey();
        } else if (this.nameText !== null) {
          if (this.inString) this.nameText += c;
          else this.endName(out);
        }
        continue;
      }
      if (this.depth === 2 && this.args === 'streaming' && (c === ',' || c === '}')) {
        flushArgs(i); // the arguments value ends here
        this.args = 'none';
      }
      switch (c) {
        case '"':
          this.inString = true;
          if (this.depth === 2 && this.expectKey) {
            this.keyText = '';
            this.expectKey = false;
          } else if (this.depth === 2 && this.key === 'name' && this.name === undefined) {
            this.nameText = '';
          } else if (this.depth === 2 && this.key === 'arguments' && this.args === 'none') {
            this.args = 'string';
          }
          break;
        case '{':
        case '[':
          this.depth++;
          if (this.depth === 2 && c === '{') this.startItem();
          else if (this.depth === 3 && this.key === 'arguments' && this.args === 'none') {
            this.args = 'streaming';
            argStart = i;
          }
          break;
        case '}':
        case ']':
          this.depth--;
          break;
        case ',':
          if (this.depth === 2) this.expectKey = true;
          break;
        case ':':
          break;
        default:
          // a number or literal as the arguments value
          if (this.depth === 2 && this.key === 'arguments' && this.args === 'none' && !/\s/.test(c)) {
            this.args = 'streaming';
            argStart = i;
          }
      }
    }
    flushArgs(text.length);
    return out;
  }

  private startItem(): void {
    this.expectKey = true;
    this.key = '';
    this.name = undefined;
    this.args = 'none';
    this.pendingArgs = '';
    this.index = -1;
  }

  private endKey(): void {
    this.key = unquote(this.keyText!) ?? this.keyText!;
    this.keyText = null;
  }

  private endName(out: ToolCallDelta[]): void {
    const name = unquote(this.nameText!) ?? '';
    this.nameText = null;
    if (!name) return; // not a call (the final parse reports it)
    this.name = name;
    this.index = this.calls++;
    out.push({ index: this.index, name });
    if (this.pendingArgs) out.push({ index: this.index, arguments: this.pendingArgs });
    this.pendingArgs = '';
  }
}

/** A JSON string's content (between its quotes) decoded, or undefined when it is not valid JSON. */
function unquote(raw: string): string | undefined {
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch {
    return undefined;
  }
}
