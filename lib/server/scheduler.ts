/**
 * Admission control: up to `maxActive` generations run at once — their decode
 * steps are batched into shared forward passes by the model's DecodeBatcher —
 * and the rest wait in FIFO order. The waiting line is bounded so an overloaded
 * server answers 429 at once instead of piling up.
 */
import { queueFull, shuttingDown } from './errors';

interface Waiter {
  grant: (release: () => void) => void;
  fail: (err: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class Scheduler {
  private readonly waiting: Waiter[] = [];
  private running = 0;
  private closed = false;

  constructor(
    private readonly maxQueue: number,
    private readonly maxActive = 1,
  ) {}

  /** Requests waiting for their turn (not counting the one running). */
  get queueDepth(): number {
    return this.waiting.length;
  }

  /** Generations running now. */
  get active(): number {
    return this.running;
  }

  /**
   * Resolves with a release function once it is this caller's turn. Rejects at
   * once with a 429 ApiError when the line is full, with the signal's reason if
   * it aborts while waiting, and with 503 once the scheduler is closed.
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.closed) return Promise.reject(shuttingDown());
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.running < this.maxActive && this.waiting.length === 0) {
      this.running++;
      return Promise.resolve(this.releaser());
    }
    if (this.waiting.length >= this.maxQueue) return Promise.reject(queueFull());
    return new Promise((grant, fail) => {
      const w: Waiter = { grant, fail, signal };
      if (signal) {
        w.onAbort = () => {
          this.remove(w);
          fail(signal.reason);
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.waiting.push(w);
    });
  }

  /** Refuses new work and fails everyone waiting with 503; the running generation is the caller's to abort. */
  close(): void {
    this.closed = true;
    for (const w of this.waiting.splice(0)) {
      if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
      w.fail(shuttingDown());
    }
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (!next) {
        this.running--;
        return;
      }
      if (next.onAbort) next.signal?.removeEventListener('abort', next.onAbort);
      next.grant(this.releaser());
    };
  }

  private remove(w: Waiter): void {
    const i = this.waiting.indexOf(w);
    if (i >= 0) this.waiting.splice(i, 1);
  }
}
