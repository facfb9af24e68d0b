/**
 * The frame every streaming route shares: wait for a generation slot, stream,
 * close with `data: [DONE]`; a client that left gets nothing more, any other
 * failure becomes an SSE error event; the slot is always given back.
 */
import { ClientGoneError, type ServerContext } from './context';
import { toApiError } from './errors';
import type { SseWriter } from './sse';

export async function streamInSlot(
  ctx: ServerContext,
  signal: AbortSignal,
  sse: SseWriter,
  work: () => Promise<void>,
): Promise<void> {
  let release: (() => void) | undefined;
  try {
    release = await ctx.scheduler.acquire(signal);
    await work();
    sse.done();
  } catch (err) {
    if (err instanceof ClientGoneError || signal.reason instanceof ClientGoneError) return sse.end();
    sse.fail(toApiError(err));
  } finally {
    release?.();
  }
}
