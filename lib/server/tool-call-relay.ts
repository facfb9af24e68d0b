/**
 * Streams one choice's tool calls as OpenAI does: a `tool_calls` delta with the
 * call's id, name and empty arguments once the name is generated, then deltas
 * with pieces of its arguments (ToolCallDelta from the turn). When the block has
 * been parsed, each call that was not streamed in full (arguments written as a
 * JSON string, or a list without its brackets) gets what is missing. OpenAI's
 * `index` counts the choice's calls; the turn numbers them per block.
 */
import type { ToolCallDelta } from '../chat/tool-call-stream';
import { newToolCallId } from '../chat/tool-calls';
import type { ToolCall } from '../chat/tools';
import { toOpenAIToolCall } from './openai-mapping';

type Send = (toolCalls: Array<Record<string, unknown>>) => void;

export class ToolCallRelay {
  private base = 0; // the OpenAI index of the current block's call 0
  private total = 0; // calls announced so far in this choice
  private streamed = new Map<number, boolean>(); // block call -> its arguments were streamed
  private parsed = 0; // calls of the current block delivered parsed

  constructor(private readonly send: Send) {}

  delta(d: ToolCallDelta): void {
    if (d.name !== undefined) {
      if (d.index === 0 && this.streamed.size > 0) this.nextBlock();
      this.streamed.set(d.index, false);
      this.total = Math.max(this.total, this.base + d.index + 1);
      this.send([{ index: this.base + d.index, id: newToolCallId(), type: 'function', function: { name: d.name, arguments: '' } }]);
    }
    if (d.arguments) {
      this.streamed.set(d.index, true);
      this.send([{ index: this.base + d.index, function: { arguments: d.arguments } }]);
    }
  }

  /** A parsed call of the current block, in order. */
  call(c: ToolCall): void {
    const k = this.parsed++;
    const openai = toOpenAIToolCall(c);
    if (!this.streamed.has(k)) {
      this.send([{ index: this.base + k, ...openai }]); // never streamed: the whole call
      this.total = Math.max(this.total, this.base + k + 1);
    } else if (!this.streamed.get(k)) {
      this.send([{ index: this.base + k, function: { arguments: openai.function.arguments } }]);
    }
    this.streamed.set(k, true);
  }

  private nextBlock(): void {
    this.base = this.total;
    this.streamed.clear();
    this.parsed = 0;
  }
}
