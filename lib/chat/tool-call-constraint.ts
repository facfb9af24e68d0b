/**
 * A required tool call (OpenAI's tool_choice "required", or a named function):
 * the answer must be exactly `<TOOLCALL>[...]</TOOLCALL>`, the model's tool-call
 * syntax (spec §6). The control tokens are forced; the list between them is held
 * to toolCallSchema: calls of declared tools only, each with arguments that
 * follow that tool's parameter schema as far as compileSchema can enforce it.
 * Every call is still validated afterwards against its full schema
 * (reply.toolCalls[i].error), as for any tool call.
 */
import { JsonConstraint, type AnswerConstraint } from './json-constraint';
import { toolCallSchema } from './json-schema';
import type { Tokenizer } from './tokenizer';

export class ToolCallConstraint implements AnswerConstraint {
  private stage: 'open' | 'body' | 'close' | 'done' = 'open';
  private readonly body: JsonConstraint;
  private readonly open: number;
  private readonly close: number;

  /** @param tools the declared tools (names are ASCII: ToolRegistry checks them) */
  constructor(tok: Tokenizer, tools: ReadonlyArray<{ name: string; parameters: unknown }>) {
    const open = tok.special.toolCall;
    const close = tok.special.toolCallEnd;
    if (open === undefined || close === undefined)
      throw new Error('a required tool call needs <TOOLCALL> and </TOOLCALL> as single tokens of the tokenizer');
    this.open = open;
    this.close = close;
    this.body = new JsonConstraint(tok, toolCallSchema(tools));
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
