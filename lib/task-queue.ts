/**
 * Runs async tasks one after another. Each model owns one: native work for the
 * model and all its sequences is issued in call order, so e.g. a clone() called
 * right after a decode() sees the decoded state, and at most one forward pass per
 * model occupies a libuv worker thread at a time.
 */
export class TaskQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private pending = 0;

  get size(): number {
    return this.pending;
  }

  run<T>(task: () => Promise<T>): Promise<T> {
    this.pending++;
    const result = this.tail.then(task, task);
    // The chain must continue whether or not this task fails.
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result.finally(() => {
      this.pending--;
    });
  }
}
