/**
 * A required tool call (OpenAI's tool_choice "required", or a named function):
 * the answer must be exactly `<TOOLCALL>[...]</TOOLCALL>`, the model's tool-call
 * syntax (spec §6), with a syntactically valid JSON array inside. The control
 * tokens are forced; the array is JSON mode's validator with an array at the top.
 * Which tools are called, and with what arguments, is checked afterwards against
 * the declared schemas (reply.toolCalls[i].error), as for any tool call.
 */
import { JsonConstraint, type AnswerConstraint } from './json-constraint';
import type { Tokenizer } from './tokenizer';

export class ToolCallConstraint implements AnswerConstraint {
  private stage: 'open' | 'body' | 'close' | 'done' = 'open';
  private readonly body: JsonConstraint;
  private readonly open: number;
  private readonly close: number;

  constructor(tok: Tokenizer) {
    const open = tok.special.toolCall;
    const close = tok.special.toolCallEnd;
    if (open === undefined || close === undefined)
      throw new Error('a required tool call needs <TOOLCALL> and </TOOLCALL> as single tokens of the tokenizer');
    this.open = open;
    this.close = close;
    this.body = new JsonConstraint(tok, 'array');
  }

  get complete(): boolean {
    return this.stage === 'done';
  }

  allows(id: number): boolean {
    switch (this.stage) {
      case 'open':
        return id === this.open;
      case 'body':
        return this.body.allows(id);
      case 'close':
        return id === this.close;
      default:
        return false;
    }
  }

  accept(id: number): void {
    if (!this.allows(id)) throw new Error(`ToolCallConstraint: token ${id} is not allowed here`);
    if (this.stage === 'open') this.stage = 'body';
    else if (this.stage === 'close') this.stage = 'done';
    else {
      this.body.accept(id);
      if (this.body.complete) this.stage = 'close';
    }
  }
}
