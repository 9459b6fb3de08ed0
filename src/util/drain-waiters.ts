/** One wait for a send buffer to fall to `level` bytes. */
interface DrainWaiter {
  readonly level: number;
  readonly signal: AbortSignal;
  readonly resolve: () => void;
  readonly onAbort: () => void;
}

/**
 * The waits on one connection's send buffer (a blocked stream waiting for its client to read).
 * The transport reports each moment its buffer may have shrunk (a frame written out, a poll
 * answered) with `drained(buffered)`; waiters whose level that meets wake then, or when their
 * signal aborts. No timer: a wait costs nothing until one of those events. Most connections
 * never have a waiter, so transports create this on the first wait.
 */
export class DrainWaiters {
  private waiters: DrainWaiter[] = [];

  /** Waits in progress. */
  get size(): number {
    return this.waiters.length;
  }

  /**
   * Resolves once `drained` reports at most `level` bytes buffered, or `signal` aborts (never
   * rejects). The caller checks the buffer first: a wait only ends on a later event.
   */
  wait(level: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) {
        resolve();
        return;
      }
      const waiter: DrainWaiter = {
        level,
        signal,
        resolve,
        onAbort: () => this.release(waiter),
      };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** The buffer now holds `buffered` bytes: wakes every waiter whose level that meets. */
  drained(buffered: number): void {
    const waiters = this.waiters;
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (buffered <= waiters[i]!.level) this.release(waiters[i]!);
    }
  }

  /** The connection ended: wakes every waiter. */
  releaseAll(): void {
    for (const waiter of this.waiters.slice()) this.release(waiter);
  }

  private release(waiter: DrainWaiter): void {
    const at = this.waiters.indexOf(waiter);
    if (at < 0) return;
    this.waiters.splice(at, 1);
    waiter.signal.removeEventListener('abort', waiter.onAbort);
    waiter.resolve();
  }
}
