/**
 * Thinking-budget enforcement for one reply (spec §5). The controller watches
 * the tokens of the reasoning channel and decides:
 *  - which tokens to mask before sampling: end-of-thinking and end-of-turn,
 *    until `minTokens` reasoning tokens exist;
 *  - when to close the thought: after `maxTokens` reasoning tokens, at the next
 *    token that contains a newline if one comes within `graceTokens` more, else
 *    at once. The closing text follows NVIDIA's recipe for this model: the
 *    thought is ended with ".\n</think>" (just "</think>" after a newline), fed to
 *    the same sequence, and the answer is generated after it — no second
 *    request, no re-prefill of the prompt.
 */
import { z } from 'zod';

export const thinkingBudgetSchema = z
  .object({
    /** Reasoning never exceeds this many tokens (0 = reasoning off). */
    maxTokens: z.number().int().min(0),
    /** End-of-thinking and end-of-turn are masked until this many reasoning tokens. */
    minTokens: z.number().int().min(0).optional(),
    /** After maxTokens, wait up to this many tokens for a newline before closing. */
    graceTokens: z.number().int().min(0).optional(),
  })
  .strict()
  .refine((b) => (b.minTokens ?? 0) <= b.maxTokens, { message: 'minTokens must not exceed maxTokens', path: ['minTokens'] });
export type ThinkingBudget = z.infer<typeof thinkingBudgetSchema>;

export interface ThinkingTokens {
  /** Token ids whose sampling ends the thought (the first token of "</think>"). */
  thinkEnd: readonly number[];
  /** Token ids that end the turn. */
  endOfTurn: readonly number[];
}

export type ThinkingAction =
  | { kind: 'continue' }
  /** Feed `text` to the sequence as the end of the reasoning, then generate the answer. */
  | { kind: 'close'; text: string };

export class ThinkingController {
  private count = 0;
  private graceUsed = 0;
  private closed = false;
  private endsWithNewline = true; // the prompt's "<think>\n" puts us after a newline

  constructor(
    private readonly budget: ThinkingBudget | undefined,
    private readonly tokens: ThinkingTokens,
  ) {}

  /** Reasoning tokens generated so far (not counting forced closing tokens). */
  get reasoningTokens(): number {
    return this.count;
  }

  /** Token ids to forbid at the next sampling step while reasoning. */
  mask(): number[] {
    if (this.closed || !this.budget?.minTokens || this.count >= this.budget.minTokens) return [];
    return [...this.tokens.thinkEnd, ...this.tokens.endOfTurn];
  }

  /** The thought ended by itself (the model produced "</think>"). */
  markClosed(): void {
    this.closed = true;
  }

  /** Observes one sampled reasoning token and its text; says whether to close now. */
  observe(text: string): ThinkingAction {
    if (this.closed || !this.budget) return { kind: 'continue' };
    this.count++;
    if (text.length > 0) this.endsWithNewline = text.endsWith('\n');
    if (this.count < this.budget.maxTokens) return { kind: 'continue' };
    const grace = this.budget.graceTokens ?? 0;
    const overBudget = this.count > this.budget.maxTokens;
    if (overBudget) this.graceUsed++;
    // At the budget: close at once unless a grace window is open and no newline yet.
    const sawNewline = text.includes('\n');
    if (grace > 0 && !sawNewline && this.graceUsed < grace) return { kind: 'continue' };
    return this.close();
  }

  /** Closes the thought now (e.g. a zero budget before any token). */
  close(): ThinkingAction {
    this.closed = true;
    const [afterNewline, otherwise] = closingTexts();
    return { kind: 'close', text: this.endsWithNewline ? afterNewline : otherwise };
  }
}

/** The texts a budget feeds to end a thought: after a newline, and otherwise. */
export function closingTexts(): [string, string] {
  return ['</think>', '.\n</think>'];
}
