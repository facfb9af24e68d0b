/**
 * A request's `n` choices, run together: the first starts alone and, once its prompt is in (it produced its
 * first token, or ended), the others start at once. They then find the prompt in the prompt cache (only the
 * first pays its prefill) and their decode steps share forward passes with the first's (continuous
 * batching), instead of each waiting for the one before. Seeds are per choice, so the tokens are those of
 * choices run one after another.
 */

export interface ChoiceHooks {
  /** Aborted when the request's signal is, or when another choice failed. */
  signal: AbortSignal;
  /** Call when the choice's prompt has been processed (idempotent): the other choices may start. */
  promptDone: () => void;
}

/**
 * Runs `run(0..n-1)` as described above and resolves to their results in index order. When one fails, the
 * others are aborted, and the first failure is thrown once every choice has settled (so each has freed its
 * sequence).
 */
export async function runChoices<T>(n: number, signal: AbortSignal, run: (index: number, hooks: ChoiceHooks) => Promise<T>): Promise<T[]> {
  const group = new AbortController();
  const follow = () => group.abort(signal.reason);
  if (signal.aborted) follow();
  else signal.addEventListener('abort', follow, { once: true });
  let failure: { error: unknown } | undefined;
  const guarded = (index: number, hooks: ChoiceHooks) =>
    run(index, hooks).catch((error: unknown) => {
      failure ??= { error };
      group.abort(error);
      throw error;
    });
  try {
    let promptDone!: () => void;
    const firstPrompt = new Promise<void>((resolve) => (promptDone = resolve));
    const first = guarded(0, { signal: group.signal, promptDone });
    first.then(promptDone, promptDone);
    await firstPrompt;
    const rest = Array.from({ length: n - 1 }, (_, k) => guarded(k + 1, { signal: group.signal, promptDone: () => {} }));
    const settled = await Promise.allSettled([first, ...rest]);
    if (failure) throw failure.error;
    return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
  } finally {
    signal.removeEventListener('abort', follow);
  }
}
