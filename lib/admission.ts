/**
 * Memory-aware admission of sequences.
 *
 * A sequence's native state lives where the engine computes (host RAM or GPU
 * memory): a fixed-size recurrent state (conv window + SSM state per Mamba
 * layer) plus a KV cache that grows with its length, up to its context size.
 * Before a sequence first gets native state it reserves its worst case, state +
 * KV for its whole context, from a byte budget, and gives it back when it is
 * disposed. A generation that was admitted therefore never runs out of memory
 * half-way through a reply.
 *
 * When the budget (or the maxConcurrentSequences cap) is full, new sequences wait
 * in FIFO order: a large request at the head is not overtaken by smaller ones
 * behind it, so nobody starves. A sequence that could never fit, even alone,
 * fails at once with OutOfMemoryError instead of waiting forever.
 */
import { OutOfMemoryError } from './errors';

/** Memory held for one admitted sequence; release() is idempotent. */
export interface Reservation {
  readonly bytes: number;
  release(): void;
}

interface Waiter {
  bytes: number;
  grant(r: Reservation): void;
  fail(err: unknown): void;
}

/**
 * Frees memory held for later use (the prompt cache's snapshots) when a sequence
 * cannot be admitted: `bytes` and `sequences` say how much is missing. Releases
 * may complete later (after queued work); waiters are admitted as they do.
 */
export type Reclaimer = (shortfall: { bytes: number; sequences: number }) => void;

export class Admission {
  private reserved = 0;
  private active = 0;
  private waiters: Waiter[] = [];
  private reclaimers: Reclaimer[] = [];

  /**
   * @param budgetBytes bytes sequences may reserve in total
   * @param maxSequences most sequences holding state at once (Infinity: only the budget limits)
   * @param budgetSource how the budget was derived, for reports and error messages
   */
  constructor(
    readonly budgetBytes: number,
    readonly maxSequences: number,
    readonly budgetSource: string,
  ) {}

  get reservedBytes(): number {
    return this.reserved;
  }
  get activeSequences(): number {
    return this.active;
  }
  get waitingSequences(): number {
    return this.waiters.length;
  }

  /** Registers a source of reclaimable memory (see Reclaimer). */
  addReclaimer(r: Reclaimer): void {
    this.reclaimers.push(r);
  }

  /**
   * Reserves `bytes` for one sequence, waiting (FIFO) while memory or the
   * sequence cap is taken. `what` describes the request for error messages.
   */
  acquire(bytes: number, what: string, signal?: AbortSignal): Promise<Reservation> {
    if (bytes > this.budgetBytes) return Promise.reject(this.neverFits(bytes, what));
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (this.waiters.length === 0 && this.fits(bytes)) return Promise.resolve(this.take(bytes));
    this.reclaim(bytes);
    return new Promise<Reservation>((resolve, reject) => {
      const waiter: Waiter = {
        bytes,
        grant: (r) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(r);
        },
        fail: reject,
      };
      const onAbort = () => {
        const at = this.waiters.indexOf(waiter);
        if (at < 0) return;
        this.waiters.splice(at, 1);
        reject(abortError(signal!));
        this.pump(); // the head may have changed
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Reserves at once when there is room and nobody waits; else throws OutOfMemoryError. */
  acquireNow(bytes: number, what: string): Reservation {
    if (bytes > this.budgetBytes) throw this.neverFits(bytes, what);
    if (this.waiters.length === 0 && this.fits(bytes)) return this.take(bytes);
    this.reclaim(bytes); // (frees memory for later calls: releases complete after queued work)
    const cap = Number.isFinite(this.maxSequences) ? ` and ${this.active} of at most ${this.maxSequences} sequences` : '';
    throw new OutOfMemoryError(
      `${what} needs ${mib(bytes)} now, but ${mib(this.reserved)} of the ${mib(this.budgetBytes)} budget is reserved${cap}, ` +
        `with ${this.waiters.length} waiting. Dispose sequences first, or raise loadModel's memoryBudgetBytes.`,
      'ERR_OUT_OF_MEMORY',
    );
  }

  /** Fails every waiter (the model is being disposed). */
  rejectWaiters(err: unknown): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) w.fail(err);
  }

  private neverFits(bytes: number, what: string): OutOfMemoryError {
    return new OutOfMemoryError(
      `${what} needs ${mib(bytes)} but sequences may use at most ${mib(this.budgetBytes)} ` +
        `(${this.budgetSource}). Use a smaller contextSize, or raise loadModel's memoryBudgetBytes.`,
      'ERR_OUT_OF_MEMORY',
    );
  }

  /** Asks the reclaimers for what `bytes` more (behind every waiter) would need. */
  private reclaim(bytes: number): void {
    if (this.reclaimers.length === 0) return;
    const wanted = this.waiters.reduce((sum, w) => sum + w.bytes, bytes);
    const shortfall = {
      bytes: Math.max(0, this.reserved + wanted - this.budgetBytes),
      sequences: Math.max(0, this.active + this.waiters.length + 1 - this.maxSequences),
    };
    if (shortfall.bytes === 0 && shortfall.sequences === 0) return;
    for (const r of this.reclaimers) r(shortfall);
  }

  private fits(bytes: number): boolean {
    return this.active < this.maxSequences && this.reserved + bytes <= this.budgetBytes;
  }

  private take(bytes: number): Reservation {
    this.reserved += bytes;
    this.active += 1;
    let held = true;
    return {
      bytes,
      release: () => {
        if (!held) return;
        held = false;
        this.reserved -= bytes;
        this.active -= 1;
        this.pump();
      },
    };
  }

  /** Admits waiters from the head of the queue while they fit. */
  private pump(): void {
    while (this.waiters.length > 0 && this.fits(this.waiters[0].bytes)) {
      const w = this.waiters.shift()!;
      w.grant(this.take(w.bytes));
    }
  }
}

function abortError(signal: AbortSignal): unknown {
  // (Node sets a DOMException 'AbortError' as the reason when abort() is given none.)
  return signal.reason ?? new DOMException('aborted while waiting for memory to admit the sequence', 'AbortError');
}

export function mib(bytes: number): string {
  return bytes >= 1 << 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
