/**
 * Lines from a readline interface, one at a time, on demand. Lines that arrive
 * while the program is busy (typed during an answer, or piped in all at once)
 * wait in a queue instead of being lost, which readline's question() would do.
 */
import type { Interface } from 'node:readline';

export class LineReader {
  private readonly queue: string[] = [];
  private waiter: ((line: string | undefined) => void) | undefined;
  private closed = false;

  constructor(private readonly rl: Interface) {
    rl.on('line', (line) => {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w(line);
      } else this.queue.push(line);
    });
    rl.on('close', () => {
      this.closed = true;
      this.waiter?.(undefined);
      this.waiter = undefined;
    });
  }

  /** The next line (showing `prompt` first), or undefined once input has ended (Ctrl-D, end of pipe, close()). */
  next(prompt: string): Promise<string | undefined> {
    if (this.queue.length > 0) return Promise.resolve(this.queue.shift());
    if (this.closed) return Promise.resolve(undefined);
    this.rl.setPrompt(prompt);
    this.rl.prompt();
    return new Promise((resolve) => (this.waiter = resolve));
  }
}
